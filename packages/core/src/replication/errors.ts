import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";

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
    code: ErrorCodes.replication.failed,
    message: `Replication failed at ${metadata["replication.stage"] ?? "unknown stage"}: ${message}`,
    metadata,
    cause,
  });
}

/** The error thrown when a call's signal is already aborted. Internal. */
export function cancelledError(signal: AbortSignal): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
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
