import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  isOmniRelayError,
  type OmniRelayError,
  ResourceLeaseQueue,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import Database from "better-sqlite3";
import { invalidOption, lockedError, quoteTableName, SqliteErrorCodes } from "./codes.js";
import { isLockedByAnother, scanNumbers } from "./files.js";
import {
  fsyncFileSync,
  type HighWater,
  highWaterPath,
  maxHighWater,
  NO_HIGH_WATER,
  raiseCounters,
  readHighWater,
  writeHighWaterSync,
} from "./high-water.js";
import { checksumOf, decodeRawRow, decodeSnapshotRow, type RawEventRow, readSnapshotParts } from "./integrity.js";
import { type LogTables, logMigrations, logTables, migrate } from "./schema.js";
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
 * Opens the file with the log's settings: WAL, exclusive locking (one writer process), busy timeout, and migrates
 * the log tables. Internal.
 * @throws OmniRelayError unavailable `resourcelease.sqlite.locked` when another process holds the file.
 */
export function openLogDatabase(
  path: string,
  table: string,
  options: { busyTimeoutMs: number; synchronous: "FULL" | "NORMAL" },
): Database.Database {
  quoteTableName(table, "table");
  const db = new Database(path, { timeout: options.busyTimeoutMs });
  try {
    // Exclusive before WAL: no shared-memory index, and the lock is held for the life of the connection, so a second
    // dispatcher on the same file fails at open instead of interleaving its numbers with ours.
    db.pragma("locking_mode = EXCLUSIVE");
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (String(mode).toLowerCase() !== "wal") throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma(`synchronous = ${options.synchronous}`);
    migrate(db, `eventlog:${table}`, logMigrations(logTables(table)));
    return db;
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === "SQLITE_BUSY") throw lockedError(path, error);
    throw error;
  }
}

/** What could be read from a damaged log. */
interface Recovered {
  /** The newest snapshot that verifies, the base of the state. */
  readonly snapshot: ResourceLeaseQueueSnapshot | undefined;
  /** Verified rows kept, in order, without a gap, reaching the snapshot (or starting at 1 without one). */
  readonly rows: readonly RawEventRow[];
  /** Readable snapshots the kept rows reach (the base among them). */
  readonly snapshots: readonly ResourceLeaseQueueSnapshot[];
  /** Last sequence of the recovered state. */
  readonly last: number;
  /** The first bad or missing sequence after the recovered state, when there is one. */
  readonly firstBad: number | undefined;
  /**
   * The highest numbers the damaged file shows anywhere — rows past the damage that still decode, the highest stored
   * sequence, snapshots that do not verify — so a repair never numbers below them, even without a record.
   */
  readonly seen: HighWater;
  /** Stored rows past the recovered state (lost), as far as they could be counted, and their range. */
  readonly droppedRows: number;
  readonly droppedRange: readonly [number, number] | undefined;
  /** Snapshots the damaged file held. */
  readonly storedSnapshots: number;
}

const NOTHING: Recovered = {
  snapshot: undefined,
  rows: [],
  snapshots: [],
  last: 0,
  firstBad: undefined,
  seen: NO_HIGH_WATER,
  droppedRows: 0,
  droppedRange: undefined,
  storedSnapshots: 0,
};

/** Reads rows from `from` on, in order, verified, stopping at the first bad, missing or unreadable one. */
function readRun(db: Database.Database, t: LogTables, from: number): { rows: RawEventRow[]; bad: number | undefined } {
  const rows: RawEventRow[] = [];
  let expected: number | undefined;
  try {
    const it = db
      .prepare<[number], RawEventRow>(
        `SELECT sequence, event_type, json, checksum FROM ${t.events} WHERE sequence >= ? ORDER BY sequence`,
      )
      .raw(true)
      .iterate(from);
    for (const row of it) {
      expected ??= row[0];
      if (row[0] !== expected) return { rows, bad: expected };
      decodeRawRow(row);
      rows.push(row);
      expected++;
    }
    return { rows, bad: undefined };
  } catch {
    return { rows, bad: expected ?? from };
  }
}

/** Runs `read`, `undefined` when SQLite or the decoder fails. */
function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Reads what can be read from a log file (a private copy: SQLite may write to it). Never throws. */
function recover(path: string, table: string): Recovered {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    const conn = db;
    const t = logTables(table);
    const tableExists = (quoted: string) =>
      attempt(
        () =>
          conn
            .prepare<[string], { n: number }>(
              "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .get(quoted.slice(1, -1))!.n > 0,
      ) ?? false;
    if (!tableExists(t.events)) return NOTHING;
    const statsAfter = (after: number) =>
      attempt(() =>
        conn
          .prepare<[number], { n: number; lo: number | null; hi: number | null }>(
            `SELECT count(*) AS n, min(sequence) AS lo, max(sequence) AS hi FROM ${t.events} WHERE sequence > ?`,
          )
          .get(after),
      );
    const stats = statsAfter(0);
    const snapshotSequences = tableExists(t.snapshots)
      ? (attempt(() =>
          conn
            .prepare<[], { sequence: number }>(`SELECT sequence FROM ${t.snapshots} ORDER BY sequence DESC`)
            .all()
            .map((r) => r.sequence),
        ) ?? [])
      : [];
    const snapshots: ResourceLeaseQueueSnapshot[] = [];
    for (const sequence of snapshotSequences) {
      const snapshot = attempt(() => {
        const row = conn
          .prepare<[number], { sequence: number; json: string; checksum: string }>(
            `SELECT sequence, json, checksum FROM ${t.snapshots} WHERE sequence = ?`,
          )
          .get(sequence);
        return row ? decodeSnapshotRow(row, readSnapshotParts(conn, t, sequence)) : undefined;
      });
      if (snapshot) snapshots.push(snapshot);
    }
    // The base is the newest snapshot that verifies; its state continues with the rows right after it. Without one,
    // the rows must start at 1.
    const base = snapshots[0];
    const head = readRun(conn, t, 1);
    const headStart = head.rows[0]?.[0];
    const headEnd = head.rows.at(-1)?.[0] ?? 0;
    let rows: RawEventRow[];
    let bad: number | undefined;
    if (base === undefined) {
      rows = headStart === 1 ? head.rows : [];
      bad = headStart === 1 ? head.bad : head.rows.length > 0 || head.bad !== undefined ? 1 : undefined;
    } else if (
      headStart !== undefined &&
      headStart <= base.lastEventSequence + 1 &&
      headEnd >= base.lastEventSequence
    ) {
      rows = head.rows; // one unbroken run from the head through the snapshot and on: history kept
      bad = head.bad;
    } else {
      const run = readRun(conn, t, base.lastEventSequence + 1);
      const joins = run.rows[0]?.[0] === base.lastEventSequence + 1;
      rows = joins ? run.rows : [];
      bad = joins ? run.bad : run.rows.length > 0 || run.bad !== undefined ? base.lastEventSequence + 1 : undefined;
    }
    const last = Math.max(base?.lastEventSequence ?? 0, rows.at(-1)?.[0] ?? 0);
    const firstRow = rows[0]?.[0];
    const kept = snapshots.filter(
      (s) =>
        s === base || (firstRow !== undefined && s.lastEventSequence >= firstRow - 1 && s.lastEventSequence <= last),
    );
    // Everything the file still shows, past the damage too.
    const seen = {
      lastSequence: Math.max(last, stats?.hi ?? 0, snapshotSequences[0] ?? 0),
      lastFencingToken: 0,
      lastSequenceId: 0,
    };
    for (const s of snapshots) {
      seen.lastFencingToken = Math.max(seen.lastFencingToken, s.lastFencingToken);
      seen.lastSequenceId = Math.max(seen.lastSequenceId, s.lastSequenceId);
    }
    attempt(() => {
      const all = conn
        .prepare<[], RawEventRow>(`SELECT sequence, event_type, json, checksum FROM ${t.events} ORDER BY sequence`)
        .raw(true)
        .iterate();
      for (const row of all) {
        const event = attempt(() => decodeRawRow(row));
        if (event) raiseCounters(seen, event);
      }
    });
    const lost = statsAfter(last);
    return {
      snapshot: base,
      rows,
      snapshots: kept,
      last,
      firstBad: bad,
      seen,
      droppedRows: lost?.n ?? 0,
      droppedRange: lost?.lo != null && lost.hi != null ? [lost.lo, lost.hi] : undefined,
      storedSnapshots: snapshotSequences.length,
    };
  } catch {
    return NOTHING;
  } finally {
    attempt(() => db?.close());
  }
}

/** The state of the recovered log at its last sequence, as a queue snapshot (needed to continue above a record). */
async function stateOf(recovered: Recovered): Promise<ResourceLeaseQueueSnapshot> {
  const base = recovered.snapshot?.lastEventSequence ?? 0;
  const events: ResourceLeaseReplicationEvent[] = [];
  for (const row of recovered.rows) if (row[0] > base) events.push(decodeRawRow(row));
  const queue = await ResourceLeaseQueue.rebuild(
    events,
    { capacity: Number.MAX_SAFE_INTEGER },
    { ...(recovered.snapshot ? { snapshot: recovered.snapshot } : {}), activeLeases: "keep" },
  );
  try {
    return queue.snapshot();
  } finally {
    await queue.close();
  }
}

/** Writes a new log file holding `rows` and `snapshots`. */
function writeLog(
  path: string,
  table: string,
  content: { rows: readonly RawEventRow[]; snapshots: readonly ResourceLeaseQueueSnapshot[]; now: number },
): void {
  const db = openLogDatabase(path, table, { busyTimeoutMs: 5000, synchronous: "FULL" });
  try {
    const t = logTables(table);
    const insertRow = db.prepare(
      `INSERT INTO ${t.events} (sequence, event_type, timestamp, json, checksum) VALUES (?, ?, ?, ?, ?)`,
    );
    const putSnapshot = db.prepare(
      `INSERT INTO ${t.snapshots} (sequence, created_at, json, checksum) VALUES (?, ?, ?, ?)`,
    );
    const putPart = db.prepare(`INSERT INTO ${t.snapshotParts} (sequence, part, json, checksum) VALUES (?, ?, ?, ?)`);
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
    if (isOmniRelayError(error) && error.code === SqliteErrorCodes.corrupt) {
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
    throw invalidOption(
      "truncateAfterLastGood",
      "repair loses what cannot be read; pass { truncateAfterLastGood: true }.",
    );
  }
  if (typeof path !== "string" || path.trim().length === 0) throw invalidOption("path", "path is required.");
  const table = options.table ?? "resourcelease_events";
  quoteTableName(table, "table");
  if (!existsSync(dirname(path))) throw invalidOption("path", `The directory of '${path}' does not exist.`);
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

/** Highest fencing token and item sequence id of a recovered log: its snapshot's, raised by the rows after it. */
function countersOf(recovered: Recovered): { lastFencingToken: number; lastSequenceId: number } {
  const counters = {
    lastFencingToken: recovered.snapshot?.lastFencingToken ?? 0,
    lastSequenceId: recovered.snapshot?.lastSequenceId ?? 0,
  };
  for (const row of recovered.rows) raiseCounters(counters, decodeRawRow(row));
  return counters;
}
