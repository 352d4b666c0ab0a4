import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ErrorCodes, isOmniRelayError, OmniRelayError, type ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import Database from "better-sqlite3";
import { lockedError, quoteTableName } from "./errors.js";
import { isLockedByAnother } from "./files.js";
import {
  fsyncFileSync,
  type HighWater,
  highWaterPath,
  maxHighWater,
  NO_HIGH_WATER,
  readHighWater,
  writeHighWaterSync,
} from "./high-water.js";
import { checksumOf, decodeRawRow, type RawEventRow } from "./integrity.js";
import { openFailedError } from "./open-errors.js";
import { assertNotOpenHere } from "./open-registry.js";
import { DEFAULT_PAGE_SIZE_BYTES } from "./options.js";
import { scanNumbers } from "./page-scan.js";
import { countersOf, NOTHING, recover, stateOf } from "./recover.js";
import { logMigrations, logTables, migrate } from "./schema.js";
import { encodeSnapshot } from "./snapshot-codec.js";

/** Options of {@link SqliteResourceLeaseReplicator.repair}. */
export interface SqliteLogRepairOptions {
  /**
   * Must be `true`: the operator's consent to lose what cannot be read. Repair keeps every event it can verify up to
   * the first bad one, moves the damaged files aside (never deletes them), and starts a log numbered above the
   * high-water record.
   */
  readonly truncateAfterLastGood: true;
  /** Events table name. @defaultValue 'resourcelease_events' */
  readonly table?: string;
  /** Time source of the suffix of the moved files (`.damaged-<time>`). @defaultValue Date.now */
  readonly now?: () => number;
}

/** What a repair found, kept and dropped. */
export interface SqliteLogRepairReport {
  /** False when the log and its record were healthy and nothing was changed. */
  readonly repaired: boolean;
  /** Why it was refused: the `reason` of the `resourcelease.sqlite.corrupt` error that `open` reports. */
  readonly reason?: string;
  /** Which file was damaged: `log`, `wal` or `high_water`. */
  readonly file?: string;
  /** Last event sequence number whose state was recovered (from the newest readable snapshot and the rows after it). */
  readonly lastGoodSequence: number;
  /** The first bad sequence number, when a row was bad or missing. */
  readonly firstBadSequence?: number;
  /**
   * Stored event rows past `lastGoodSequence`, whose effect is lost (0 when the damaged file could not be read). Rows
   * up to it are in the repaired log, as rows or folded into its snapshot; all of them stay in the file moved aside.
   */
  readonly droppedEvents: number;
  /** Sequence numbers of those rows, lowest and highest. */
  readonly droppedRange?: readonly [number, number];
  /** Snapshots of the damaged log that are not in the repaired one. */
  readonly droppedSnapshots: number;
  /**
   * Events the high-water record says were committed but that could not be recovered: `[lastGoodSequence + 1,
   * record]`. Absent when nothing known was lost (or there was no readable record to know it by).
   */
  readonly lostRange?: readonly [number, number];
  /** The repaired log's last sequence number: the next event is this + 1 (never below the record). */
  readonly resumeSequence: number;
  /** Fencing tokens continue above this (never below the record). */
  readonly lastFencingToken: number;
  /** Item sequence ids continue above this (never below the record). */
  readonly lastSequenceId: number;
  /** Where the damaged files were moved (`<path>.damaged-<time>`, `-wal` beside it). */
  readonly movedAside: readonly string[];
}

/**
 * Runs `attempt` (an open of a log) until it stops failing `resourcelease.sqlite.locked` or `busyTimeoutMs` has
 * passed, pausing a few random milliseconds between attempts. The wait is this function's, not SQLite's: in exclusive
 * locking mode a connection keeps every lock it took, so two processes opening one log at once could each take the
 * shared lock of their first read, then each wait in SQLite's busy handler for the exclusive lock the other's shared
 * lock denied; both failed `locked` when the timeout ran out, and neither got the log. An attempt that meets a lock
 * closes its connection ({@link openLogDatabase}), which lets go of what it held. Internal.
 * @throws the last attempt's error.
 */
export function whileLocked<T>(busyTimeoutMs: number, attempt: () => T): T {
  const deadline = performance.now() + busyTimeoutMs;
  for (let n = 0; ; n++) {
    try {
      return attempt();
    } catch (error) {
      const left = deadline - performance.now();
      if (!(isOmniRelayError(error) && error.code === ErrorCodes.sqlite.locked) || left <= 0) throw error;
      sleepSync(Math.min(left, lockRetryPauseMs(n)));
    }
  }
}

/**
 * Opens the file with the log's settings: WAL, exclusive locking (one writer process), and migrates the log tables.
 * One attempt that never waits inside SQLite (run it under {@link whileLocked}); afterwards the connection's busy
 * timeout is `busyTimeoutMs`. Internal.
 * @throws OmniRelayError unavailable `resourcelease.sqlite.locked` (connection closed) when another process holds the
 *   file; otherwise the coded error of `openFailedError` (never a raw SQLite error).
 */
export function openLogDatabase(
  path: string,
  table: string,
  options: { busyTimeoutMs: number; synchronous: "FULL" | "NORMAL"; pageSizeBytes?: number },
): Database.Database {
  quoteTableName(table, "table");
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (error) {
    throw openFailedError(error, path);
  }
  try {
    // Exclusive before WAL: no shared-memory index, and the lock is held for the life of the connection, so a second
    // dispatcher on the same file fails at open instead of interleaving its numbers with ours.
    db.pragma("locking_mode = EXCLUSIVE");
    // Takes effect only in a file that has no pages yet (before WAL is set); an existing log keeps its own.
    db.pragma(`page_size = ${options.pageSizeBytes ?? DEFAULT_PAGE_SIZE_BYTES}`);
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (String(mode).toLowerCase() !== "wal") throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma(`synchronous = ${options.synchronous}`);
    migrate(db, `eventlog:${table}`, logMigrations(logTables(table)));
    // The exclusive lock is held from here on; the timeout only matters to what SQLite itself may still wait on.
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
    return db;
  } catch (error) {
    db.close();
    if (isBusy(error)) throw lockedError(path, error);
    throw openFailedError(error, path);
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/**
 * The pause before a busy open's next attempt: random (so two processes that met do not meet again), growing from a
 * few milliseconds to at most 50, as SQLite's own busy handler does. Internal.
 */
function lockRetryPauseMs(attempt: number): number {
  const ceiling = Math.min(50, 2 << Math.min(attempt, 5));
  return 1 + Math.random() * ceiling;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (opening is synchronous; it runs at start-up or on the log's own thread). Internal. */
function sleepSync(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/** Writes a new log file holding `rows` and `snapshots`. */
function writeLog(
  path: string,
  table: string,
  content: { rows: readonly RawEventRow[]; snapshots: readonly ResourceLeaseQueueSnapshot[]; now: number },
): void {
  const db = whileLocked(5000, () => openLogDatabase(path, table, { busyTimeoutMs: 5000, synchronous: "FULL" }));
  try {
    const t = logTables(table);
    const insertRow = db.prepare(
      `INSERT INTO ${t.events} (sequence, event_type, timestamp, data, checksum) VALUES (?, ?, ?, ?, ?)`,
    );
    const putSnapshot = db.prepare(
      `INSERT INTO ${t.snapshots} (sequence, created_at, data, checksum) VALUES (?, ?, ?, ?)`,
    );
    const putPart = db.prepare(`INSERT INTO ${t.snapshotParts} (sequence, part, data, checksum) VALUES (?, ?, ?, ?)`);
    db.transaction(() => {
      for (const row of content.rows) {
        insertRow.run(row[0], row[1], decodeRawRow(row).timestamp, row[2], row[3]);
      }
      for (const snapshot of content.snapshots) {
        const { head, parts } = encodeSnapshot(snapshot);
        putSnapshot.run(snapshot.lastEventSequence, content.now, head, checksumOf(head));
        for (const [i, part] of parts.entries()) putPart.run(snapshot.lastEventSequence, i, part, checksumOf(part));
      }
    }).immediate();
  } finally {
    db.close();
  }
  fsyncFileSync(path);
}

/** Renames `from` to `to` when it exists; returns `to`, or undefined. */
function moveIfPresent(from: string, to: string): string | undefined {
  if (!existsSync(from)) return undefined;
  renameSync(from, to);
  return to;
}

/** A suffix `.damaged-<UTC time>` that names no existing file beside the log or its record. */
function asideSuffix(path: string, record: string, now: number): string {
  const time = new Date(now)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  for (let n = 0; ; n++) {
    const suffix = `.damaged-${time}${n === 0 ? "" : `-${n}`}`;
    if (![path, `${path}-wal`, `${path}-shm`, record].some((f) => existsSync(f + suffix))) return suffix;
  }
}

/** Opens a log the way {@link SqliteResourceLeaseReplicator.open} does (passed in: that module imports this one). */
export type LogOpener = (options: {
  path: string;
  table: string;
  verifyOnOpen: "all";
  durability: "sync";
}) => Promise<{ lastSequence(): Promise<number>; close(): Promise<void> }>;

const LOG_SUFFIXES = ["", "-wal"] as const;

/**
 * Opens a private copy of the log and its record the way `open` does, and returns the `corrupt` error `open` would
 * throw, or none for a healthy log (with its last sequence and record).
 */
async function diagnose({
  path,
  table,
  scratch,
  openLog,
}: {
  path: string;
  table: string;
  scratch: string;
  openLog: LogOpener;
}): Promise<{ error: OmniRelayError | undefined; last: number; highWater: HighWater }> {
  const copy = join(scratch, basename(path));
  for (const suffix of LOG_SUFFIXES) if (existsSync(path + suffix)) copyFileSync(path + suffix, copy + suffix);
  const record = highWaterPath(path, table);
  if (existsSync(record)) copyFileSync(record, highWaterPath(copy, table));
  try {
    const log = await openLog({ path: copy, table, verifyOnOpen: "all", durability: "sync" });
    const last = await log.lastSequence();
    await log.close();
    return { error: undefined, last, highWater: readHighWater(copy, table) ?? NO_HIGH_WATER };
  } catch (error) {
    if (isOmniRelayError(error) && error.code === ErrorCodes.sqlite.corrupt) {
      return { error, last: 0, highWater: NO_HIGH_WATER };
    }
    throw error;
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(copy + suffix, { force: true });
    rmSync(highWaterPath(copy, table), { force: true });
  }
}

/** Implements {@link SqliteResourceLeaseReplicator.repair}. Internal. */
export async function repairLog(
  path: string,
  options: SqliteLogRepairOptions,
  openLog: LogOpener,
): Promise<SqliteLogRepairReport> {
  if (options?.truncateAfterLastGood !== true) {
    throw OmniRelayError.invalidOption(
      "truncateAfterLastGood",
      "repair loses what cannot be read; pass { truncateAfterLastGood: true }.",
    );
  }
  if (typeof path !== "string" || path.trim().length === 0)
    throw OmniRelayError.invalidOption("path", "path is required.");
  assertNotOpenHere(path); // its reads and moves of the files would drop the open log's lock (see open-registry.ts)
  const table = options.table ?? "resourcelease_events";
  quoteTableName(table, "table");
  if (!existsSync(dirname(path)))
    throw OmniRelayError.invalidOption("path", `The directory of '${path}' does not exist.`);
  if (isLockedByAnother(path)) throw lockedError(path);
  const now = (options.now ?? Date.now)();
  const recordFile = highWaterPath(path, table);
  const suffix = asideSuffix(path, recordFile, now);
  const scratch = mkdtempSync(join(dirname(path), `.${basename(path)}.repair-`));
  try {
    let found = await diagnose({ path, table, scratch, openLog });
    if (!found.error) {
      return {
        repaired: false,
        lastGoodSequence: found.last,
        droppedEvents: 0,
        droppedSnapshots: 0,
        resumeSequence: found.last,
        lastFencingToken: found.highWater.lastFencingToken,
        lastSequenceId: found.highWater.lastSequenceId,
        movedAside: [],
      };
    }
    const movedAside: string[] = [];
    let recorded: HighWater | undefined;
    if (found.error.metadata.reason === "high_water_damaged") {
      // The record cannot be trusted: move it aside and judge the log on its own. A healthy log gets a new record.
      movedAside.push(moveIfPresent(recordFile, recordFile + suffix) ?? recordFile);
      found = await diagnose({ path, table, scratch, openLog });
      if (!found.error) {
        await (await openLog({ path, table, verifyOnOpen: "all", durability: "sync" })).close();
        const hw = readHighWater(path, table) ?? NO_HIGH_WATER;
        return {
          repaired: true,
          reason: "high_water_damaged",
          file: "high_water",
          lastGoodSequence: found.last,
          droppedEvents: 0,
          droppedSnapshots: 0,
          resumeSequence: hw.lastSequence,
          lastFencingToken: hw.lastFencingToken,
          lastSequenceId: hw.lastSequenceId,
          movedAside,
        };
      }
    } else {
      recorded = readHighWater(path, table);
    }
    const cause = found.error;
    // Recover from a private copy (SQLite writes to a file it opens; the damaged originals stay byte for byte).
    const copy = join(scratch, basename(path));
    for (const s of LOG_SUFFIXES) if (existsSync(path + s)) copyFileSync(path + s, copy + s);
    // Never number below the record, nor below anything the damaged files still show (read raw first: SQLite may
    // not be able to read them, and opening the copy checkpoints its WAL).
    const raw = maxHighWater(scanNumbers(copy), scanNumbers(`${copy}-wal`));
    const recovered = existsSync(copy) ? recover(copy, table) : NOTHING;
    const floor = maxHighWater(maxHighWater(recorded ?? NO_HIGH_WATER, recovered.seen), raw);
    const state = { lastSequence: recovered.last, ...countersOf(recovered) };
    let counters: HighWater = state;
    let content: { rows: readonly RawEventRow[]; snapshots: readonly ResourceLeaseQueueSnapshot[] };
    if (
      floor.lastSequence > state.lastSequence ||
      floor.lastFencingToken > state.lastFencingToken ||
      floor.lastSequenceId > state.lastSequenceId
    ) {
      // Continue above: one snapshot of the recovered state, numbered at the floor, with the floor's counters. The
      // recovered rows are not kept (the numbers between them and the snapshot are lost, and a log has no gaps);
      // they stay in the file moved aside.
      counters = maxHighWater(state, floor);
      const snapshot: ResourceLeaseQueueSnapshot = {
        ...(await stateOf(recovered)),
        lastEventSequence: counters.lastSequence,
        lastFencingToken: counters.lastFencingToken,
        lastSequenceId: counters.lastSequenceId,
      };
      content = { rows: [], snapshots: [snapshot] };
    } else {
      content = { rows: recovered.rows, snapshots: recovered.snapshots };
    }
    const fresh = join(scratch, `new-${basename(path)}`);
    writeLog(fresh, table, { ...content, now });
    // The new log is ready: move the damaged files aside and put it in their place.
    for (const s of ["", "-wal", "-shm"]) {
      const moved = moveIfPresent(path + s, `${path}${suffix}${s}`);
      if (moved) movedAside.push(moved);
    }
    if (existsSync(recordFile)) copyFileSync(recordFile, recordFile + suffix);
    renameSync(fresh, path);
    fsyncFileSync(dirname(path));
    writeHighWaterSync({ path, table, highWater: counters, now });
    const keptSnapshots = content.snapshots.filter((s) => recovered.snapshots.includes(s)).length;
    const firstBad =
      recovered.firstBad ?? (floor.lastSequence > state.lastSequence ? state.lastSequence + 1 : undefined);
    return {
      repaired: true,
      ...(cause.metadata.reason !== undefined ? { reason: cause.metadata.reason } : {}),
      ...(cause.metadata.file !== undefined ? { file: cause.metadata.file } : {}),
      lastGoodSequence: recovered.last,
      ...(firstBad !== undefined ? { firstBadSequence: firstBad } : {}),
      droppedEvents: recovered.droppedRows,
      ...(recovered.droppedRange ? { droppedRange: recovered.droppedRange } : {}),
      droppedSnapshots: Math.max(0, recovered.storedSnapshots - keptSnapshots),
      ...(floor.lastSequence > state.lastSequence
        ? { lostRange: [state.lastSequence + 1, floor.lastSequence] as const }
        : {}),
      resumeSequence: counters.lastSequence,
      lastFencingToken: counters.lastFencingToken,
      lastSequenceId: counters.lastSequenceId,
      movedAside,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
