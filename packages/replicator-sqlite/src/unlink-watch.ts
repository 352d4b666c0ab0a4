import { closeSync, fstatSync, openSync } from "node:fs";
import { ErrorCodes, isOmniRelayError, type OmniRelayError } from "@omnirelay/core";
import { isFilePath } from "./files.js";
import { logLostError } from "./open-errors.js";

/**
 * Tells, after each commit, whether the log's file has been unlinked since it was opened (its directory deleted with
 * `rm -rf`, or the file itself): SQLite goes on committing to an unlinked file, which no later open can see. One
 * `fstat` of a descriptor held open (nlink 0), a few microseconds per commit, not per event. A file replaced by a
 * rename is still linked; the high-water keeper's `stat` of the path notices that.
 *
 * Close it only after the database connection: POSIX drops every lock a process holds on a file when it closes any
 * descriptor of that file, so closing this one first would let another process open the log while this one still
 * writes it. Internal.
 */
export interface UnlinkWatch {
  /** The error of a log whose file is gone, or `undefined` while it is linked (or cannot be told). */
  lost(): OmniRelayError | undefined;
  close(): void;
}

const NONE: UnlinkWatch = { lost: () => undefined, close: () => undefined };

/** Watches the file at `path` (nothing for an in-memory database or a file that cannot be opened). Internal. */
export function watchUnlink(path: string): UnlinkWatch {
  if (!isFilePath(path)) return NONE;
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return NONE;
  }
  let open = true;
  return {
    lost() {
      if (!open) return undefined;
      try {
        if (fstatSync(fd).nlink > 0) return undefined;
      } catch {
        return undefined;
      }
      return logLostError(
        path,
        "the file was deleted (found at a commit; the events of that commit were not acknowledged)",
      );
    },
    close() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/** Whether `error` is the `log_lost` error (also as rebuilt from the writer thread's report). Internal. */
export function isLogLost(error: unknown): error is OmniRelayError {
  return (
    isOmniRelayError(error) && error.code === ErrorCodes.sqlite.writeFailed && error.metadata.reason === "log_lost"
  );
}
