import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { ErrorCodes, isOmniRelayError, OmniRelayError } from "@omnirelay/core";
import { damagedError, fromSqliteError } from "./errors.js";

/** The code an error carries (SQLite's `SQLITE_*` or Node's `E*`), if any. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const WRITE_ERROR = /^(SQLITE_FULL|SQLITE_IOERR_WRITE|SQLITE_IOERR_FSYNC|SQLITE_IOERR_TRUNCATE|EFBIG|ENOSPC|EDQUOT)/;
const NO_PERMISSION = /^(EACCES|EPERM|EROFS|SQLITE_READONLY|SQLITE_PERM|SQLITE_AUTH)/;
/** SQLITE_ERROR texts of a log whose tables do not match its schema version (dropped tables, deleted version rows). */
const SCHEMA_MISMATCH = /no such table|no such column|already exists|has no column/;

/**
 * Why a log file could not be opened: checks the file system only after the failure (never on a healthy path).
 * Returns the metadata `reason` and words for the message.
 */
function diagnose(path: string, code: string | undefined): { reason: string; why: string } {
  const dir = dirname(path);
  if (!existsSync(dir)) return { reason: "directory_missing", why: `its directory '${dir}' does not exist` };
  if (isDirectory(path)) return { reason: "not_a_file", why: "the path is a directory, not a file" };
  if (code && WRITE_ERROR.test(code)) {
    return {
      reason: "write_error",
      why: "writing the file failed (the disk is full, a file-size limit such as `ulimit -f` is reached, or an I/O error)",
    };
  }
  if (existsSync(path) && !can(path, constants.R_OK | constants.W_OK)) {
    return { reason: "not_writable", why: "the file is not readable and writable by this process" };
  }
  if (!can(dir, constants.W_OK | constants.X_OK)) {
    return {
      reason: "directory_not_writable",
      why: `its directory '${dir}' is not writable by this process (SQLite creates the log's -wal file there)`,
    };
  }
  if (code && NO_PERMISSION.test(code)) return { reason: "not_writable", why: "the file system refuses to write it" };
  return { reason: "io_error", why: "SQLite could not open, lock or read it" };
}

/** Metadata naming the underlying error's code: `sqliteCode` for SQLite's, `errno` for the file system's. */
function causeCode(code: string | undefined): Record<string, string> {
  if (!code) return {};
  return code.startsWith("SQLITE_") ? { sqliteCode: code } : { errno: code };
}

/**
 * The coded error of a log that could not be opened. A coded error is returned as it is; SQLite's report of a
 * malformed file, or of tables that do not match the schema version, becomes data-loss `resourcelease.sqlite.corrupt`
 * (reason `sqlite`); anything else — the environment: a missing or read-only directory, a read-only file, a path that
 * is a directory, a full disk or file-size limit — becomes unavailable `resourcelease.sqlite.write_failed` with
 * metadata `reason`, `path` and `sqliteCode` or `errno`, and a message naming the cause. Internal.
 */
export function openFailedError(error: unknown, path: string): unknown {
  if (isOmniRelayError(error)) return error;
  const code = codeOf(error);
  const mapped = fromSqliteError(error, path);
  if (mapped !== error) return mapped;
  if (code === "SQLITE_ERROR" && SCHEMA_MISMATCH.test(messageOf(error))) {
    return damagedError({
      path,
      file: "log",
      reason: "sqlite",
      detail: `the log's tables do not match its schema version (SQLite reports ${code}: ${messageOf(error)}).`,
      metadata: { sqliteCode: code },
      cause: error,
    });
  }
  const { reason, why } = diagnose(path, code);
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.writeFailed,
    message: `Could not open the SQLite log '${path}': ${why} (${code ?? "error"}: ${messageOf(error)}).`,
    metadata: { reason, path, ...causeCode(code) },
    cause: error,
  });
}

/**
 * The error of a high-water record that exists but cannot be read (permissions, a directory in its place, an I/O
 * error): unavailable `resourcelease.sqlite.write_failed`, reason `high_water_unreadable`. Internal.
 */
export function highWaterUnreadableError(error: unknown, file: string): OmniRelayError {
  const code = codeOf(error);
  const why =
    code === "EACCES" || code === "EPERM"
      ? "it is not readable by this process"
      : code === "EISDIR"
        ? "a directory is in its place"
        : "reading it failed";
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.writeFailed,
    message: `Could not read the SQLite log's high-water record '${file}': ${why} (${code ?? "error"}: ${messageOf(error)}).`,
    metadata: { reason: "high_water_unreadable", path: file, ...causeCode(code) },
    cause: error,
  });
}

/**
 * The error of a log whose file disappeared while it was open (its directory deleted, the file unlinked or replaced):
 * commits went to a file no later open can see, so the log is faulted. Unavailable `resourcelease.sqlite.write_failed`,
 * reason `log_lost`. Internal.
 */
export function logLostError(path: string, detail: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.sqlite.writeFailed,
    message: `The SQLite log '${path}' is gone from disk while open: ${detail}. Events committed since are not in any file a later open can read; the log is faulted (every publish is refused). Restore the directory or file, then reopen and rebuild.`,
    metadata: { reason: "log_lost", path, ...causeCode(codeOf(cause)) },
    ...(cause !== undefined ? { cause } : {}),
  });
}
