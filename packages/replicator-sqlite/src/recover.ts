import {
  ResourceLeaseQueue,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import Database from "better-sqlite3";
import { type HighWater, NO_HIGH_WATER, raiseCounters } from "./high-water.js";
import { decodeRawRow, decodeSnapshotRow, type RawEventRow, readSnapshotParts } from "./integrity.js";
import { type LogTables, logTables } from "./schema.js";

/** What could be read from a damaged log. Internal. */
export interface Recovered {
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

/** Nothing recovered (no file, or none SQLite can read). Internal. */
export const NOTHING: Recovered = {
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
        `SELECT sequence, event_type, data, checksum FROM ${t.events} WHERE sequence >= ? ORDER BY sequence`,
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

/** Reads what can be read from a log file (a private copy: SQLite may write to it). Never throws. Internal. */
export function recover(path: string, table: string): Recovered {
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
    // A file not yet at schema version 4 names its data columns `json`; this is a private copy, so rename them.
    for (const quoted of [t.events, t.snapshots, t.snapshotParts]) {
      attempt(() => {
        const columns = conn.prepare(`PRAGMA table_info(${quoted})`).all() as Array<{ name: string }>;
        if (columns.some((c) => c.name === "json")) conn.exec(`ALTER TABLE ${quoted} RENAME COLUMN json TO data`);
      });
    }
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
          .prepare<[number], { sequence: number; data: string; checksum: string }>(
            `SELECT sequence, data, checksum FROM ${t.snapshots} WHERE sequence = ?`,
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
        .prepare<[], RawEventRow>(`SELECT sequence, event_type, data, checksum FROM ${t.events} ORDER BY sequence`)
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

/** The state of the recovered log at its last sequence, as a queue snapshot (needed to continue above a record). Internal. */
export async function stateOf(recovered: Recovered): Promise<ResourceLeaseQueueSnapshot> {
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

/** Highest fencing token and item sequence id of a recovered log: its snapshot's, raised by the rows after it. Internal. */
export function countersOf(recovered: Recovered): { lastFencingToken: number; lastSequenceId: number } {
  const counters = {
    lastFencingToken: recovered.snapshot?.lastFencingToken ?? 0,
    lastSequenceId: recovered.snapshot?.lastSequenceId ?? 0,
  };
  for (const row of recovered.rows) raiseCounters(counters, decodeRawRow(row));
  return counters;
}
