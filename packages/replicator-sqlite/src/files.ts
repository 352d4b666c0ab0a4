import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import type { OmniRelayError } from "@omnirelay/core";
import Database from "better-sqlite3";
import { damagedError, lockedError } from "./errors.js";
import { scanWal } from "./wal.js";

const MAGIC = Buffer.from("SQLite format 3\0", "latin1");

/** Whether `path` names a file on disk (not SQLite's in-memory or temporary databases). Internal. */
export function isFilePath(path: string): boolean {
  return path !== ":memory:" && path !== "" && !path.startsWith("file:");
}

/** What {@link inspectFiles} found. Internal. */
export interface FileInspection {
  /** The damage, when there is some. */
  readonly damage: OmniRelayError | undefined;
  /** Size of the database file in bytes (0 when it does not exist). */
  readonly size: number;
  /** WAL frames SQLite will use (0 without a WAL). */
  readonly walFrames: number;
}

const NO_FILE: FileInspection = { damage: undefined, size: 0, walFrames: 0 };

/**
 * Checks the database file's 100-byte header and size, and its WAL, before SQLite opens them (SQLite would open a
 * 0-byte file as an empty database, ignore a WAL from its first bad frame on, and report a damaged header only as
 * SQLITE_NOTADB). A 0-byte file is not damage here: whether it is a new log or an emptied one is the high-water
 * record's call (a young log's file stays empty until its first checkpoint; its pages are in the WAL). Internal.
 */
export function inspectFiles(path: string): FileInspection {
  if (!isFilePath(path) || !existsSync(path)) return NO_FILE;
  return findDamage(path);
}

function findDamage(path: string): FileInspection {
  const fd = openSync(path, "r");
  let size: number;
  const header = Buffer.alloc(100);
  try {
    size = fstatSync(fd).size;
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  const wal = scanWal(`${path}-wal`);
  const walFrames = wal?.usedFrames ?? 0;
  const found = (damage: OmniRelayError | undefined): FileInspection => ({ damage, size, walFrames });
  if (size > 0) {
    if (size < 100) {
      return found(damagedError({ path, file: "log", reason: "truncated", detail: `the file is ${size} bytes long.` }));
    }
    const problem = headerProblem(header);
    if (problem) return found(damagedError({ path, file: "log", reason: "header", detail: problem }));
    const raw = header.readUInt16BE(16);
    const pageSize = raw === 1 ? 65536 : raw;
    if (size % pageSize !== 0) {
      return found(
        damagedError({
          path,
          file: "log",
          reason: "truncated",
          detail: `the file is ${size} bytes long, not a whole number of ${pageSize}-byte pages.`,
          metadata: { size: String(size), pageSize: String(pageSize) },
        }),
      );
    }
    // The page count in the header is valid when the change counter equals version-valid-for. The file may be
    // shorter only while a WAL holds the missing pages (a checkpoint that was cut short).
    const pages = header.readUInt32BE(28);
    if (pages > 0 && header.readUInt32BE(24) === header.readUInt32BE(92) && (wal?.usedFrames ?? 0) === 0) {
      if (size < pages * pageSize) {
        return found(
          damagedError({
            path,
            file: "log",
            reason: "truncated",
            detail: `the file holds ${size / pageSize} pages but its header says ${pages}.`,
            metadata: { size: String(size), pages: String(pages) },
          }),
        );
      }
    }
  }
  if (wal?.damage) {
    const d = wal.damage;
    return found(
      damagedError({
        path: `${path}-wal`,
        file: "wal",
        reason: d.reason,
        detail:
          d.frame === -1
            ? `the WAL header fails its checksum, yet committed frames follow it (frame ${d.committedFrame}); SQLite would ignore the whole WAL.`
            : `WAL frame ${d.frame} (byte ${d.offset}) fails its checksum, yet committed frames follow it (frame ${d.committedFrame}); SQLite would silently drop everything from frame ${d.frame} on.`,
        metadata: { frame: String(d.frame), offset: String(d.offset), committedFrame: String(d.committedFrame) },
      }),
    );
  }
  return found(undefined);
}

function headerProblem(h: Buffer): string | undefined {
  if (!h.subarray(0, 16).equals(MAGIC)) return "the first 16 bytes are not 'SQLite format 3'.";
  const raw = h.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    return `the page size field (${raw}) is not a power of two between 512 and 65536.`;
  }
  if (h[18] !== 1 && h[18] !== 2) return `the write version (${h[18]}) is not 1 or 2.`;
  if (h[19] !== 1 && h[19] !== 2) return `the read version (${h[19]}) is not 1 or 2.`;
  if (h[21] !== 64 || h[22] !== 32 || h[23] !== 32) return "the payload fraction fields are not 64, 32, 32.";
  return undefined;
}

/**
 * Whether another process holds the SQLite file open with its lock (a running log). Opens it read-only, which never
 * checkpoints or writes, so a damaged WAL stays as it is. Internal.
 */
export function isLockedByAnother(path: string): boolean {
  if (!isFilePath(path) || !existsSync(path)) return false;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return false;
  } catch (error) {
    return (error as { code?: string }).code === "SQLITE_BUSY";
  } finally {
    db?.close();
  }
}

/**
 * The pre-open checks of a log: {@link inspectFiles}, reporting `resourcelease.sqlite.locked` instead when another
 * process holds the file (its WAL is then changing under the scan, so what looked like damage proves nothing). Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`; unavailable `resourcelease.sqlite.locked`.
 */
export function checkFilesBeforeOpen(path: string): FileInspection {
  const inspection = inspectFiles(path);
  if (!inspection.damage) return inspection;
  if (isLockedByAnother(path)) throw lockedError(path);
  throw inspection.damage;
}
