import { isOmniRelayError, OmniRelayError } from "@omnirelay/core";

/**
 * Stable error codes of the object-storage replicator, reader, governance sink and stores. Clients match on these
 * strings; never rename one. The status each code travels with is fixed and listed beside it.
 */
export const ObjectStorageErrorCodes = {
  /** invalid-argument: a constructor or `open` option is invalid; metadata `option`. */
  optionsInvalid: "resourcelease.options.invalid",
  /** invalid-argument: an object key is not allowed by the store (empty, `..`, absolute, …); metadata `key`. */
  keyInvalid: "resourcelease.objectstorage.key_invalid",
  /**
   * already-exists: a create-if-absent write found the key already present. History is never overwritten; for the
   * replicator this means another writer (or a stale one) owns the prefix. Metadata `key`.
   */
  exists: "resourcelease.objectstorage.exists",
  /**
   * failed-precondition: a published event's sequence number is not exactly the last stored one + 1 (a gap or a
   * repeat, e.g. a restarted producer that began again at 1). Nothing is written. Metadata `sequence`, `expected`.
   */
  sequenceGap: "resourcelease.objectstorage.sequence_gap",
  /**
   * data-loss: a stored segment is missing, unreadable or inconsistent (bad JSON, wrong first sequence, a gap
   * inside it). Metadata `key`, `reason`.
   */
  corrupt: "resourcelease.objectstorage.corrupt",
  /**
   * unavailable: a write failed, or an earlier one did (the replicator is faulted and rejects every later publish
   * until it is reopened, because the outcome of the failed write is unknown). Metadata `sequence`.
   */
  writeFailed: "resourcelease.objectstorage.write_failed",
  /** unavailable: a store request failed (network, permissions, throttling); metadata `operation`, `key`. */
  storeFailed: "resourcelease.objectstorage.store_failed",
  /** unavailable: the replicator, sink or store was closed. */
  closed: "resourcelease.objectstorage.closed",
  /** cancelled: the caller's signal aborted the call. */
  cancelled: "resourcelease.cancelled",
} as const;

/** Union of every code in {@link ObjectStorageErrorCodes}. */
export type ObjectStorageErrorCode = (typeof ObjectStorageErrorCodes)[keyof typeof ObjectStorageErrorCodes];

/** Builds the error for a bad option. Internal. */
export function invalidOption(option: string, message: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ObjectStorageErrorCodes.optionsInvalid,
    message,
    metadata: { option },
  });
}

/** Builds the error of a create-if-absent write that found the key. Internal. */
export function existsError(key: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "already-exists",
    code: ObjectStorageErrorCodes.exists,
    message: `Object ${key} already exists; it is never overwritten.`,
    metadata: { key },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Builds the error for a key a store refuses. Internal. */
export function keyError(key: string, reason: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ObjectStorageErrorCodes.keyInvalid,
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
    code: ObjectStorageErrorCodes.storeFailed,
    message: `Object store ${operation} of ${key} failed: ${message}`,
    metadata: { operation, key },
    cause,
  });
}

/** Builds a data-loss error naming the segment key and what is wrong with it. Internal. */
export function corruptError(key: string, reason: string, detail: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: ObjectStorageErrorCodes.corrupt,
    message: `Segment ${key} is corrupt (${reason}): ${detail}`,
    metadata: { key, reason },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** The error of a call on a closed object. Internal. */
export function closedError(what: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ObjectStorageErrorCodes.closed,
    message: `The ${what} is closed.`,
  });
}

/** The error of a call whose signal is already aborted. Internal. */
export function cancelledError(signal: AbortSignal): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ObjectStorageErrorCodes.cancelled,
    message: "The call was cancelled.",
    cause: signal.reason,
  });
}

/** True when `error` is a create-if-absent conflict of this package. */
export function isObjectExistsError(error: unknown): error is OmniRelayError {
  return isOmniRelayError(error) && error.code === ObjectStorageErrorCodes.exists;
}
