import type { Clock, ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView } from "@omnirelay/core/replication";
import type Database from "better-sqlite3";
import {
  checksumOf,
  decodeSnapshotRow,
  readSnapshotParts,
  type SnapshotPartRow,
  type SnapshotRow,
} from "./integrity.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import type { LogTables } from "./schema.js";
import { encodeSnapshotHead, encodeSnapshotParts } from "./snapshot-codec.js";

/** How many snapshots and events to keep once a snapshot is stored. Internal. */
export type SnapshotRetention = Pick<ResolvedReplicatorOptions, "retainSnapshots" | "retainEventsAfterSnapshot">;

/** Writes snapshots: at once, or part by part. Internal. */
export interface SnapshotStore {
  /** Stores a snapshot in one transaction (head, parts, pruning). */
  store(snapshot: ResourceLeaseQueueSnapshotView): void;
  /** Removes parts stored earlier under `sequence` (of a snapshot whose head was never written). */
  clear(sequence: number): void;
  /**
   * Stores parts `first`, `first + 1`, ... of the snapshot at `sequence`, in one transaction: at once, or (the writer
   * thread) settling once written, the parts sent later queued behind them.
   */
  putParts(sequence: number, first: number, parts: readonly Buffer[]): void | Promise<void>;
  /** Stores the head of a snapshot whose `parts` parts are stored, then prunes, in one transaction. */
  finish(snapshot: ResourceLeaseQueueSnapshotView, parts: number): void;
}

/** Snapshot rows as the log stores them (head and parts already encoded; checksums computed here). Internal. */
export interface SnapshotRows {
  /** Removes parts stored earlier under `sequence` (of a snapshot whose head was never written). */
  clear(sequence: number): void;
  /** Stores parts `first`, `first + 1`, ... of the snapshot at `sequence`, in one transaction (see SnapshotStore). */
  putParts(sequence: number, first: number, parts: readonly Uint8Array[]): void | Promise<void>;
  /**
   * Stores a snapshot's head, then prunes, in one transaction; with `parts`, its parts are cleared and stored first
   * in the same transaction.
   */
  finish(head: SnapshotHead): void;
}

/** A snapshot's encoded head row, and (stored at once) its parts. Internal. */
export interface SnapshotHead {
  readonly sequence: number;
  readonly createdAt: number;
  /** The head's JSON text. */
  readonly head: string;
  readonly parts?: readonly Uint8Array[];
}

/**
 * Prepares the statements that store a snapshot (its head row and parts, each with a checksum) and then prune old
 * snapshots and (with `retainEventsAfterSnapshot`) the events it covers. A snapshot is readable only once its head is
 * stored, so parts written ahead of it (in their own transactions) are invisible until then. Internal.
 */
export function prepareSnapshotRows(
  db: Database.Database,
  tables: LogTables,
  retention: SnapshotRetention,
): SnapshotRows {
  const t = tables;
  const putSnapshot = db.prepare(
    `INSERT OR REPLACE INTO ${t.snapshots} (sequence, created_at, data, checksum) VALUES (?, ?, ?, ?)`,
  );
  const clearParts = db.prepare(`DELETE FROM ${t.snapshotParts} WHERE sequence = ?`);
  const putPart = db.prepare(`INSERT INTO ${t.snapshotParts} (sequence, part, data, checksum) VALUES (?, ?, ?, ?)`);
  const pruneSnapshots = db.prepare(
    `DELETE FROM ${t.snapshots} WHERE sequence NOT IN (SELECT sequence FROM ${t.snapshots} ORDER BY sequence DESC LIMIT ?)`,
  );
  const pruneParts = db.prepare(
    `DELETE FROM ${t.snapshotParts} WHERE sequence NOT IN (SELECT sequence FROM ${t.snapshots})`,
  );
  const pruneEvents = db.prepare(`DELETE FROM ${t.events} WHERE sequence <= ?`);
  const putParts = (seq: number, first: number, parts: readonly Uint8Array[]) => {
    for (const [i, part] of parts.entries()) putPart.run(seq, first + i, part, checksumOf(part));
  };
  const finish = ({ sequence, createdAt, head, parts }: SnapshotHead) => {
    if (parts) {
      clearParts.run(sequence);
      putParts(sequence, 0, parts);
    }
    putSnapshot.run(sequence, createdAt, head, checksumOf(head));
    pruneSnapshots.run(retention.retainSnapshots);
    pruneParts.run();
    if (retention.retainEventsAfterSnapshot !== undefined) {
      pruneEvents.run(sequence - retention.retainEventsAfterSnapshot);
    }
  };
  return {
    clear: (seq) => void clearParts.run(seq),
    putParts: db.transaction(putParts),
    finish: db.transaction(finish),
  };
}

/** The {@link SnapshotStore} that encodes snapshots (on this thread) and stores them as `rows`. Internal. */
export function snapshotStoreOver(rows: SnapshotRows, clock: Clock): SnapshotStore {
  return {
    store: (snapshot) => {
      const parts = [...encodeSnapshotParts(snapshot)];
      const head = encodeSnapshotHead(snapshot, parts.length);
      rows.finish({ sequence: snapshot.lastEventSequence, createdAt: clock.now(), head, parts });
    },
    clear: (seq) => rows.clear(seq),
    putParts: (seq, first, parts) => rows.putParts(seq, first, parts),
    finish: (snapshot, parts) =>
      rows.finish({
        sequence: snapshot.lastEventSequence,
        createdAt: clock.now(),
        head: encodeSnapshotHead(snapshot, parts),
      }),
  };
}

/** Parts written per step of {@link writeSnapshotInSteps} (20,000 entries, some tens of milliseconds). */
const PARTS_PER_STEP = 4;

/**
 * Paces the steps of a snapshot written in steps: the next one runs at the next turn of the event loop or after the
 * next commit, whichever comes first (a producer whose publishes fill whole group commits can commit again and again
 * without leaving the microtask queue, which would hold a step back until it stops). Internal.
 */
export class StepPacer {
  private wake: (() => void) | undefined;

  /** Resolves at the next turn of the event loop or the next {@link afterCommit}. */
  pause(): Promise<void> {
    return new Promise<void>((resolve) => {
      const step = () => {
        clearImmediate(immediate);
        this.wake = undefined;
        resolve();
      };
      const immediate = setImmediate(step);
      this.wake = step;
    });
  }

  /** Lets a paused step go on. */
  afterCommit(): void {
    this.wake?.();
  }
}

/**
 * Writes a snapshot in steps: its parts a few at a time, each step one transaction, `pause()` between two, then its
 * head (and the pruning). Stops, returning false, as soon as `still()` is false after a pause; parts left behind
 * without a head are never read, and the next stored snapshot prunes them. Internal.
 */
export async function writeSnapshotInSteps(
  store: SnapshotStore,
  snapshot: ResourceLeaseQueueSnapshotView,
  between: { still: () => boolean; pause: () => Promise<void> },
): Promise<boolean> {
  const { still, pause } = between;
  const seq = snapshot.lastEventSequence;
  store.clear(seq);
  let written = 0;
  const batch: Buffer[] = [];
  // The writer thread writes one step's parts while this thread encodes and sends the next, then waits for the first:
  // at most two steps are with the thread, so what waits for it stays small whatever the snapshot's size.
  let writing: Promise<unknown> | undefined;
  try {
    for (const part of encodeSnapshotParts(snapshot)) {
      batch.push(part);
      if (batch.length < PARTS_PER_STEP) continue;
      const step = Promise.resolve(store.putParts(seq, written, batch));
      written += batch.length;
      batch.length = 0;
      const previous = writing;
      writing = step;
      await previous;
      await pause();
      if (!still()) return false;
    }
    if (batch.length > 0) writing = Promise.all([writing, store.putParts(seq, written, batch)]);
    written += batch.length;
    await writing; // every part is written before the head that makes them readable
    writing = undefined;
  } finally {
    // Left early (stopped, or a step failed): the write still under way settles unobserved, never unhandled.
    writing?.catch(() => {});
  }
  if (!still()) return false;
  store.finish(snapshot, written);
  return true;
}

/**
 * The newest stored snapshot, verified, or `undefined`. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`.
 */
export function readLatestSnapshot(db: Database.Database, tables: LogTables): ResourceLeaseQueueSnapshot | undefined {
  const raw = readLatestSnapshotRows(db, tables);
  return raw ? decodeSnapshotRow(raw.row, raw.parts) : undefined;
}

/** The newest stored snapshot's rows, unverified (see {@link decodeSnapshotRow}), or `undefined`. Internal. */
export function readLatestSnapshotRows(db: Database.Database, tables: LogTables): RawSnapshot | undefined {
  const row = db
    .prepare<[], SnapshotRow>(`SELECT sequence, data, checksum FROM ${tables.snapshots} ORDER BY sequence DESC LIMIT 1`)
    .get();
  return row ? { row, parts: readSnapshotParts(db, tables, row.sequence) } : undefined;
}

/** The newest stored snapshot's head row and how many part rows it has, unverified, or `undefined`. Internal. */
export function readLatestSnapshotHead(db: Database.Database, tables: LogTables): SnapshotHeadRow | undefined {
  const row = db
    .prepare<[], SnapshotRow>(`SELECT sequence, data, checksum FROM ${tables.snapshots} ORDER BY sequence DESC LIMIT 1`)
    .get();
  if (!row) return undefined;
  const { n } = db
    .prepare<[number], { n: number }>(`SELECT count(*) AS n FROM ${tables.snapshotParts} WHERE sequence = ?`)
    .get(row.sequence)!;
  return { row, parts: n };
}

/** A snapshot's head row and its number of part rows. Internal. */
export interface SnapshotHeadRow {
  readonly row: SnapshotRow;
  readonly parts: number;
}

/** Part rows of the snapshot at `sequence` from part `from` on, at most `limit`, in order, unverified. Internal. */
export function readSnapshotPartsPage(
  db: Database.Database,
  tables: LogTables,
  page: { sequence: number; from: number; limit: number },
): SnapshotPartRow[] {
  return db
    .prepare<[number, number, number], SnapshotPartRow>(
      `SELECT part, data, checksum FROM ${tables.snapshotParts} WHERE sequence = ? AND part >= ? ORDER BY part LIMIT ?`,
    )
    .all(page.sequence, page.from, page.limit);
}

/** Part rows per page when a snapshot is read in pieces (some 20,000 entries). Internal. */
export const SNAPSHOT_PARTS_PER_PAGE = 4;

/** A snapshot's head row and part rows as stored. Internal. */
export interface RawSnapshot {
  readonly row: SnapshotRow;
  readonly parts: SnapshotPartRow[];
}
