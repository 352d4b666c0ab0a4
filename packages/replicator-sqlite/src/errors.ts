import { ErrorCodes, isOmniRelayError, OmniRelayError } from "@omnirelay/core";

const REPAIR_HINT =
  "Restore a backup, or run SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true }) to move the damaged files aside and start a log from what can be read, numbered above the high-water record.";

/** What {@link damagedError} reports. Internal. */
export interface FileDamage {
  readonly path: string;
  readonly file: "log" | "wal" | "high_water";
  readonly reason: string;
  readonly detail: string;
  readonly sequence?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

/** Builds the data-loss error of damaged or missing files (`resourcelease.sqlite.corrupt`). Internal. */
export function damagedError(d: FileDamage): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: ErrorCodes.sqlite.corrupt,
    message: `The SQLite event log is damaged (${d.reason}, ${d.file} '${d.path}'): ${d.detail} ${REPAIR_HINT}`,
    metadata: {
      ...d.metadata,
      reason: d.reason,
      file: d.file,
      path: d.path,
      ...(d.sequence !== undefined ? { sequence: String(d.sequence) } : {}),
    },
    ...(d.cause !== undefined ? { cause: d.cause } : {}),
  });
}

const MALFORMED = /^SQLITE_(CORRUPT|NOTADB|FORMAT|IOERR_SHORT_READ)/;

/**
 * Turns SQLite's own report of a malformed file (SQLITE_CORRUPT*, SQLITE_NOTADB, ...) into
 * `resourcelease.sqlite.corrupt` with reason `sqlite`; returns any other error as it is. Internal.
 */
export function fromSqliteError(error: unknown, path: string, sequence?: number): unknown {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string" || !MALFORMED.test(code)) return error;
  return damagedError({
    path,
    file: "log",
    reason: "sqlite",
    detail: `SQLite reports ${code}: ${(error as Error).message}.`,
    ...(sequence !== undefined ? { sequence } : {}),
    metadata: { sqliteCode: code },
    cause: error,
  });
}

/** The error of a log another process holds open. Internal. */
export function lockedError(path: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.locked,
    message: `The SQLite log '${path}' is open in another process; only one process may write a log.`,
    metadata: { path },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** What {@link corruptError} reports: the first bad sequence number and what is wrong there. Internal. */
export interface LogCorruption {
  readonly sequence: number;
  readonly reason: string;
  readonly detail: string;
  readonly cause?: unknown;
}

/** Builds a data-loss error naming the first bad sequence number. Internal. */
export function corruptError({ sequence, reason, detail, cause }: LogCorruption): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: ErrorCodes.sqlite.corrupt,
    message: `The SQLite event log is corrupt at sequence ${sequence} (${reason}): ${detail} ${REPAIR_HINT}`,
    metadata: { sequence: String(sequence), reason, file: "log" },
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
    throw OmniRelayError.invalidOption(
      option,
      `${option} must match ${TABLE_NAME.source}, got ${JSON.stringify(value)}.`,
    );
  }
  return `"${value}"`;
}

/** The error of a publish whose signal was already aborted. Internal. */
export function cancelledError(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The publish was cancelled.",
  });
}

/** The error of a call on a closed log or store. Internal. */
export function closedError(): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.closed,
    message: "The SQLite event log is closed.",
  });
}

/** The error of a publish after an earlier failed write. Internal. */
export function faultedError(fault: OmniRelayError, sequence: number | undefined): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.writeFailed,
    message: `An earlier write to the SQLite event log failed (${fault.code}); reopen the log and rebuild the queue. ${fault.message}`,
    metadata: {
      sequence: String(sequence ?? 0),
      "fault.code": fault.code,
      ...(fault.metadata.reason !== undefined ? { "fault.reason": fault.metadata.reason } : {}),
    },
    cause: fault,
  });
}

/** True when `error` is this package's corrupt-log error. */
export function isCorruptLogError(error: unknown): error is OmniRelayError {
  return isOmniRelayError(error) && error.code === ErrorCodes.sqlite.corrupt;
}
