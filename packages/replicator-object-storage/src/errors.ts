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

/** Where a log ends below the events its checkpoint acknowledged. Internal. */
export interface TailLoss {
  /** The segment the checkpoint names: the one that must hold `checkpointSequence`. */
  readonly key: string;
  /** The last sequence number the store still holds (0 when it holds none). */
  readonly lastSequence: number;
  /** The checkpoint's `lastSequence`: every event up to it was stored before the checkpoint was written. */
  readonly checkpointSequence: number;
}

/** Text of a {@link TailLoss}, shared by the writer's error and the reader's `corrupt` entry. Internal. */
export function tailLossMessage(loss: TailLoss): string {
  return `the checkpoint records events up to ${loss.checkpointSequence} in this segment, but the stored log ends at ${loss.lastSequence}: events ${loss.lastSequence + 1}..${loss.checkpointSequence} were acknowledged and are gone (the segment was truncated or replaced, or segments were deleted). Restore it from versioning or a backup; the log will not number new events over them.`;
}

/**
 * Builds the data-loss error of a log that ends below its checkpoint (reason `tail`), with metadata `sequence` (the
 * first lost event), `lastSequence` (what the store holds) and `checkpointSequence`. Internal.
 */
export function tailLossError(loss: TailLoss): OmniRelayError {
  return withMetadata(corruptError(loss.key, "tail", tailLossMessage(loss)), {
    sequence: String(loss.lastSequence + 1),
    lastSequence: String(loss.lastSequence),
    checkpointSequence: String(loss.checkpointSequence),
  });
}

/** The same error with more metadata. Internal. */
export function withMetadata(error: OmniRelayError, metadata: Record<string, string>): OmniRelayError {
  return new OmniRelayError({
    status: error.status,
    code: error.code,
    message: error.message,
    metadata: { ...error.metadata, ...metadata },
    ...(error.cause !== undefined ? { cause: error.cause } : {}),
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
