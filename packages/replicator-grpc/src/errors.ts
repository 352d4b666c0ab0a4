import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** The error of a call whose signal aborted. Internal. */
export function cancelled(reason?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The replication call was cancelled.",
    cause: reason,
  });
}

/** The error of a call on a closed client or hub. Internal. */
export function closedError(what: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.replicationHub.closed,
    message: `The ${what} is closed.`,
  });
}
