import { isOmniRelayError, OmniRelayError } from "@omnirelay/core";

/**
 * Stable error codes of the SQLite replicator and state store. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const SqliteErrorCodes = {
  /** invalid-argument: a constructor or `open` option is invalid; metadata `option`. */
  optionsInvalid: "resourcelease.options.invalid",
  /**
   * data-loss: a stored row fails its checksum, does not decode, or the sequence numbers have a gap; metadata
   * `sequence` (the first bad sequence number), `reason` (`checksum` | `decode` | `gap` | `mismatch` | `missing_head`).
   */
  corrupt: "resourcelease.sqlite.corrupt",
  /**
   * failed-precondition: a published event's sequence number is not the last one + 1 (a gap or a repeat);
   * metadata `sequence`, `expected`. The replicator is faulted afterwards.
   */
  sequenceGap: "resourcelease.sqlite.sequence_gap",
  /**
   * unavailable: a write failed (or an earlier one did, so the replicator is faulted and rejects every later
   * publish until it is reopened); metadata `sequence` of the first event that was not committed.
   */
  writeFailed: "resourcelease.sqlite.write_failed",
  /** unavailable: the replicator or store was closed. */
  closed: "resourcelease.sqlite.closed",
  /** unavailable: another process holds the log open (a second writer would corrupt the order); metadata `path`. */
  locked: "resourcelease.sqlite.locked",
  /** failed-precondition: the file was written by a newer version of this package; metadata `version`, `supported`. */
  schemaTooNew: "resourcelease.sqlite.schema_too_new",
} as const;

/** Union of every code in {@link SqliteErrorCodes}. */
export type SqliteErrorCode = (typeof SqliteErrorCodes)[keyof typeof SqliteErrorCodes];

/** Builds the error for a bad option. Internal. */
export function invalidOption(option: string, message: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: SqliteErrorCodes.optionsInvalid,
    message,
    metadata: { option },
  });
}

/** Builds a data-loss error naming the first bad sequence number. Internal. */
export function corruptError(sequence: number, reason: string, detail: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: SqliteErrorCodes.corrupt,
    message: `The SQLite event log is corrupt at sequence ${sequence} (${reason}): ${detail} Run SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true }) to drop it and everything after it.`,
    metadata: { sequence: String(sequence), reason },
    ...(cause !== undefined ? { cause } : {}),
  });
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Checks a table name against `^[A-Za-z_][A-Za-z0-9_]{0,62}$` and returns it double-quoted for SQL. Only names that
 * passed this check are ever put into SQL text. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`.
 */
export function quoteTableName(value: unknown, option: string): string {
  if (typeof value !== "string" || !TABLE_NAME.test(value)) {
    throw invalidOption(option, `${option} must match ${TABLE_NAME.source}, got ${JSON.stringify(value)}.`);
  }
  return `"${value}"`;
}

/** The error of a call on a closed log or store. Internal. */
export function closedError(): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: SqliteErrorCodes.closed,
    message: "The SQLite event log is closed.",
  });
}

/** The error of a publish after an earlier failed write. Internal. */
export function faultedError(fault: OmniRelayError, sequence: number | undefined): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: SqliteErrorCodes.writeFailed,
    message: `An earlier write to the SQLite event log failed (${fault.code}); reopen the log and rebuild the queue.`,
    metadata: { sequence: String(sequence ?? 0), "fault.code": fault.code },
    cause: fault,
  });
}

/** True when `error` is this package's corrupt-log error. */
export function isCorruptLogError(error: unknown): error is OmniRelayError {
  return isOmniRelayError(error) && error.code === SqliteErrorCodes.corrupt;
}
