import { ResourceLeaseErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError, omniError } from "../errors/omnirelay-error.js";

/**
 * Stable error codes of the replication plumbing. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const ReplicationErrorCodes = {
  /** invalid-argument: a stored or received event (or pending item) does not have the expected shape; metadata `field`. */
  eventInvalid: "resourcelease.replication.event_invalid",
  /**
   * failed-precondition: an event's sequence number is not greater than the last one accepted. Sequence numbers are
   * assigned by the queue in mutation order, so this means a bug upstream; metadata `replication.sequence`, `replication.last`.
   */
  outOfOrder: "resourcelease.replication.out_of_order",
  /** data-loss: a checkpoint loaded from a checkpoint store is malformed; metadata `field`. */
  checkpointInvalid: "resourcelease.replication.checkpoint_invalid",
  /** already-exists: the sink is already registered with this replicator. */
  sinkDuplicate: "resourcelease.replication.sink_duplicate",
  /** unavailable: a sink or inner replicator failed with a non-OmniRelay error; metadata `replication.stage`. */
  failed: ResourceLeaseErrorCodes.replicationFailed,
} as const;

/** Union of every code in {@link ReplicationErrorCodes}. */
export type ReplicationErrorCode = (typeof ReplicationErrorCodes)[keyof typeof ReplicationErrorCodes];

/** Builds the error a constructor in this folder throws for a bad option. Internal. */
export function invalidOption(option: string, message: string): OmniRelayError {
  return omniError("invalid-argument", ResourceLeaseErrorCodes.optionsInvalid, message, { option });
}

/**
 * Wraps a failure of a sink or inner replicator, adding `replication.*` metadata. An `OmniRelayError` keeps its
 * status and code (a cancelled sink stays cancelled); anything else becomes `unavailable`
 * `resourcelease.replication.failed`. The original error is the `cause`. Internal.
 */
export function replicationFailure(cause: unknown, metadata: Record<string, string>): OmniRelayError {
  if (isOmniRelayError(cause)) {
    return new OmniRelayError({
      status: cause.status,
      code: cause.code,
      message: cause.message,
      metadata: { ...cause.metadata, ...metadata },
      cause,
    });
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new OmniRelayError({
    status: "unavailable",
    code: ReplicationErrorCodes.failed,
    message: `Replication failed at ${metadata["replication.stage"] ?? "unknown stage"}: ${message}`,
    metadata,
    cause,
  });
}

/** The error thrown when a call's signal is already aborted. Internal. */
export function cancelledError(signal: AbortSignal): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ResourceLeaseErrorCodes.cancelled,
    message: "The replication call was cancelled.",
    cause: signal.reason,
  });
}

/** Calls `fn`, turning a synchronous throw into a rejected promise. Internal. */
export function invoke<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return Promise.reject(error);
  }
}
