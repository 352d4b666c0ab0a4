import { ResourceLeaseErrorCodes } from "../errors/codes.js";
import { OmniRelayError, omniError } from "../errors/omnirelay-error.js";
import type { OmniRelayStatus } from "../errors/status.js";

/**
 * Stable error codes of the {@link ResourceLeaseWorker}. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const ResourceLeaseWorkerErrorCodes = {
  /** failed-precondition: the server rejected a renewal (stale or unknown token); the lease belongs to nobody or another worker. */
  fenced: ResourceLeaseErrorCodes.fenced,
  /** deadline-exceeded: the lease deadline minus `safetyMarginMs` arrived without a successful renewal. */
  expiredLocally: "resourcelease.lease.expired_locally",
  /** unavailable: the worker is closing and the handler outlived `graceMs`; the item was failed with requeue. */
  shuttingDown: "resourcelease.worker.shutting_down",
  /** unavailable: the client returned more grants than the worker had free slots; the extras were failed with requeue. */
  noFreeSlot: "resourcelease.worker.no_free_slot",
  /** failed-precondition: `start()` after `close()`. */
  closed: "resourcelease.worker.closed",
  /** failed-precondition: `context.heartbeat()` after the handler settled. */
  leaseSettled: "resourcelease.worker.lease_settled",
  /** invalid-argument: an option of the worker or of `close()` is invalid; metadata `option` names it. */
  optionsInvalid: ResourceLeaseErrorCodes.optionsInvalid,
} as const;

/** Union of every code in {@link ResourceLeaseWorkerErrorCodes}. */
export type ResourceLeaseWorkerErrorCode =
  (typeof ResourceLeaseWorkerErrorCodes)[keyof typeof ResourceLeaseWorkerErrorCodes];

/** Statuses after which retrying the same call with the same token can never succeed. */
const leaseLostStatuses: ReadonlySet<OmniRelayStatus> = new Set([
  "failed-precondition",
  "not-found",
  "permission-denied",
  "invalid-argument",
]);

/** Codes a per-token batch result carries when the lease is gone. */
const leaseLostCodes: ReadonlySet<string> = new Set([
  ResourceLeaseErrorCodes.fenced,
  ResourceLeaseErrorCodes.unknownToken,
  ResourceLeaseErrorCodes.principalMismatch,
  ResourceLeaseErrorCodes.tokenRequired,
]);

/** True when an error says the lease can no longer be acted on (as opposed to a transient failure). Internal. */
export function isLeaseLost(error: OmniRelayError): boolean {
  return leaseLostStatuses.has(error.status) || leaseLostCodes.has(error.code);
}

/** Builds the error of a per-token batch-complete failure. Internal. */
export function batchResultError(code: string | undefined, message: string | undefined): OmniRelayError {
  const lost = code !== undefined && leaseLostCodes.has(code);
  return new OmniRelayError({
    status: lost ? (code === ResourceLeaseErrorCodes.unknownToken ? "not-found" : "failed-precondition") : "unknown",
    code: code ?? "omnirelay.unknown",
    message: message ?? "The lease could not be completed.",
  });
}

/** Metadata naming a lease in errors and logs (never the lease id). Internal. */
export function leaseMeta(token: {
  sequenceId: number;
  attempt: number;
  fencingToken: number;
}): Record<string, string> {
  return {
    sequenceId: String(token.sequenceId),
    attempt: String(token.attempt),
    fencingToken: String(token.fencingToken),
  };
}

/** The reason a handler's signal carries when a renewal was rejected. Internal. */
export function fencedError(
  token: { sequenceId: number; attempt: number; fencingToken: number },
  cause: OmniRelayError,
): OmniRelayError {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ResourceLeaseWorkerErrorCodes.fenced,
    message: `The lease on item ${token.sequenceId} (attempt ${token.attempt}) was lost: ${cause.message}`,
    metadata: leaseMeta(token),
    cause,
  });
}

/** The reason a handler's signal carries when its lease ran out locally. Internal. */
export function expiredLocallyError(
  token: { sequenceId: number; attempt: number; fencingToken: number },
  cause: OmniRelayError | undefined,
): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ResourceLeaseWorkerErrorCodes.expiredLocally,
    message: `The lease on item ${token.sequenceId} (attempt ${token.attempt}) could not be renewed before its deadline.`,
    metadata: leaseMeta(token),
    ...(cause ? { cause } : {}),
  });
}

/** Builds the error a constructor or `close()` throws for a bad option. Internal. */
export function invalidOption(option: string, message: string): OmniRelayError {
  return omniError("invalid-argument", ResourceLeaseWorkerErrorCodes.optionsInvalid, message, { option });
}
