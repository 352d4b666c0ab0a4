import { ErrorCodes, isOmniRelayError, OmniRelayError } from "@omnirelay/core";

/** Builds the error of a create-if-absent write that found the key. Internal. */
export function existsError(key: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "already-exists",
    code: ErrorCodes.objectStorage.exists,
    message: `Object ${key} already exists; it is never overwritten.`,
    metadata: { key },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Builds the error for a key a store refuses. Internal. */
export function keyError(key: string, reason: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.objectStorage.keyInvalid,
    message: `Object key ${JSON.stringify(key)} is invalid: ${reason}`,
    metadata: { key },
  });
}

/** Wraps a store SDK failure (keeps an `OmniRelayError` as it is). Internal. */
export function storeError(operation: string, key: string, cause: unknown): OmniRelayError {
  if (isOmniRelayError(cause)) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.objectStorage.storeFailed,
    message: `Object store ${operation} of ${key} failed: ${message}`,
    metadata: { operation, key },
    cause,
  });
}

/** Builds a data-loss error naming the segment key and what is wrong with it. Internal. */
export function corruptError(key: string, reason: string, detail: string): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: ErrorCodes.objectStorage.corrupt,
    message: `Segment ${key} is corrupt (${reason}): ${detail}`,
    metadata: { key, reason },
  });
}

/** The error of a call on a closed object. Internal. */
export function closedError(what: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.objectStorage.closed,
    message: `The ${what} is closed.`,
  });
}

/** The error of a call whose signal is already aborted. Internal. */
export function cancelledError(signal: AbortSignal): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The call was cancelled.",
    cause: signal.reason,
  });
}

/** True when `error` is a create-if-absent conflict of this package. */
export function isObjectExistsError(error: unknown): error is OmniRelayError {
  return isOmniRelayError(error) && error.code === ErrorCodes.objectStorage.exists;
}
