import { OmniRelayError, ResourceLeaseErrorCodes } from "@omnirelay/core";
import { MiddlewareErrorCodes } from "@omnirelay/core/middleware";

/**
 * Stable error codes of the replication hub and its client. Clients match on these strings; never rename one.
 * The status each code travels with is listed beside it.
 */
export const GrpcReplicationErrorCodes = {
  /** failed-precondition: a batch would leave a gap at the hub; metadata `replication.acked`, `replication.sequence`. */
  gap: "resourcelease.replication.grpc.gap",
  /** invalid-argument: a publish stream did not start with a hello, or named an invalid source; metadata `field`. */
  protocol: "resourcelease.replication.grpc.protocol",
  /** not-found: the hub has no log for the source. */
  sourceNotFound: "resourcelease.replication.grpc.source_not_found",
  /**
   * aborted: a newer publish stream for the same source replaced this one. No longer sent: a hub now refuses the
   * second stream instead ({@link GrpcReplicationErrorCodes.sourceBusy}). Kept so older clients' matches still compile.
   */
  superseded: "resourcelease.replication.grpc.superseded",
  /**
   * already-exists: the source already has a live publish stream (one per source); metadata `replication.source`.
   * The client retries; a dead stream is dropped by the hub's keepalive within about 15 s.
   */
  sourceBusy: "resourcelease.replication.grpc.source_busy",
  /**
   * aborted: a re-sent event differs from the one the hub stored at that sequence number; nothing of the batch is
   * stored or acknowledged. Metadata `replication.source`, `replication.sequence`, `replication.acked`. Two writers
   * used one node id, or a node lost its log and numbered again from an old point: an operator must look.
   */
  conflict: "resourcelease.replication.grpc.conflict",
  /**
   * permission-denied: the caller's identity may not publish as, or read, the node id it named; metadata
   * `replication.source`, `rpc`.
   */
  permissionDenied: "resourcelease.replication.grpc.permission_denied",
  /** unauthenticated: the call carries no verified client certificate or bearer token (core's code); metadata `rpc`. */
  unauthenticated: MiddlewareErrorCodes.authenticationRequired,
  /** unauthenticated: the bearer token failed verification (core's code); metadata `reason`. */
  invalidToken: MiddlewareErrorCodes.invalidToken,
  /** unavailable: the source's log failed to open or to store a batch. */
  storeFailed: "resourcelease.replication.grpc.store_failed",
  /** unavailable: the hub is shutting down or the client is closed. */
  closed: "resourcelease.replication.grpc.closed",
  /** resource-exhausted: the client's outbox is at its hard cap (`overflow: 'lag'`); metadata `replication.pending`. */
  outboxFull: "resourcelease.replication.grpc.outbox_full",
  /** deadline-exceeded: the hub did not answer a hello or acknowledge sent events in time. */
  ackTimeout: "resourcelease.replication.grpc.ack_timeout",
  /** unavailable: the hub could not be reached or the call failed at the transport. */
  unavailable: "resourcelease.replication.grpc.unavailable",
  /** failed-precondition: published events do not strictly increase; metadata `replication.sequence`, `replication.last`. */
  outOfOrder: "resourcelease.replication.out_of_order",
  /** cancelled: the caller's signal aborted the call. */
  cancelled: ResourceLeaseErrorCodes.cancelled,
} as const;

/** Union of every code in {@link GrpcReplicationErrorCodes}. */
export type GrpcReplicationErrorCode = (typeof GrpcReplicationErrorCodes)[keyof typeof GrpcReplicationErrorCodes];

/** The error a constructor throws for a bad option. Internal. */
export function invalidOption(option: string, message?: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ResourceLeaseErrorCodes.optionsInvalid,
    message: message ?? `Option '${option}' is invalid.`,
    metadata: { option },
  });
}

/** The error of a call whose signal aborted. Internal. */
export function cancelled(reason?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: GrpcReplicationErrorCodes.cancelled,
    message: "The replication call was cancelled.",
    cause: reason,
  });
}

/** The error of a call on a closed client or hub. Internal. */
export function closedError(what: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: GrpcReplicationErrorCodes.closed,
    message: `The ${what} is closed.`,
  });
}
