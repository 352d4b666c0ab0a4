import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { OmniRelayStatus } from "../errors/status.js";

/** Statuses after which retrying the same call with the same token can never succeed. */
const leaseLostStatuses: ReadonlySet<OmniRelayStatus> = new Set([
  "failed-precondition",
  "not-found",
  "permission-denied",
  "invalid-argument",
]);

/** Codes a per-token batch result carries when the lease is gone. */
const leaseLostCodes: ReadonlySet<string> = new Set([
  ErrorCodes.resourceLease.leaseFenced,
  ErrorCodes.resourceLease.leaseCancelled,
  ErrorCodes.resourceLease.leaseUnknownToken,
  ErrorCodes.resourceLease.leasePrincipalMismatch,
  ErrorCodes.resourceLease.leaseTokenRequired,
]);

/**
 * True when an error says the lease can no longer be acted on (as opposed to a transient failure). Internal.
 * `resourcelease.not_owner` is failed-precondition but transient: the node that answered lost the shard, and the
 * new owner, once it has replayed the log, holds the same lease under the same token.
 */
export function isLeaseLost(error: OmniRelayError): boolean {
  if (error.code === ErrorCodes.resourceLease.notOwner) return false;
  return leaseLostStatuses.has(error.status) || leaseLostCodes.has(error.code);
}

/** Builds the error of a per-token batch-complete failure. Internal. */
export function batchResultError(code: string | undefined, message: string | undefined): OmniRelayError {
  const lost = code !== undefined && leaseLostCodes.has(code);
  return new OmniRelayError({
    status: lost
      ? code === ErrorCodes.resourceLease.leaseUnknownToken
        ? "not-found"
        : "failed-precondition"
      : "unknown",
    code: code ?? ErrorCodes.rpc.unknown,
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
    code: ErrorCodes.resourceLease.leaseFenced,
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
    code: ErrorCodes.resourceLease.leaseExpiredLocally,
    message: `The lease on item ${token.sequenceId} (attempt ${token.attempt}) could not be renewed before its deadline.`,
    metadata: leaseMeta(token),
    ...(cause ? { cause } : {}),
  });
}

/** Longest wait a refusal's `retryAfterMs` can ask of the lease loop (a bad value must not park a worker). */
const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** The `retryAfterMs` a refusal carries (metadata), capped; 0 when it has none. */
export function retryAfter(error: OmniRelayError): number {
  const ms = Number(error.metadata.retryAfterMs);
  return Number.isFinite(ms) && ms > 0 ? Math.min(Math.round(ms), MAX_RETRY_AFTER_MS) : 0;
}
