import type { Clock, ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type Database from "better-sqlite3";
import { checksumOf, decodeSnapshotRow, readSnapshotParts, type SnapshotRow } from "./integrity.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import type { LogTables } from "./schema.js";
import { encodeSnapshotHead, encodeSnapshotParts } from "./snapshot-codec.js";

/** How many snapshots and events to keep once a snapshot is stored. Internal. */
export type SnapshotRetention = Pick<ResolvedReplicatorOptions, "retainSnapshots" | "retainEventsAfterSnapshot">;

/** Writes snapshots: at once, or part by part. Internal. */
export interface SnapshotStore {
  /** Stores a snapshot in one transaction (head, parts, pruning). */
  store(snapshot: ResourceLeaseQueueSnapshot): void;
  /** Removes parts stored earlier under `sequence` (of a snapshot whose head was never written). */
  clear(sequence: number): void;
  /** Stores parts `first`, `first + 1`, ... of the snapshot at `sequence`, in one transaction. */
  putParts(sequence: number, first: number, parts: readonly Buffer[]): void;
  /** Stores the head of a snapshot whose `parts` parts are stored, then prunes, in one transaction. */
  finish(snapshot: ResourceLeaseQueueSnapshot, parts: number): void;
}

/**
 * Prepares the statements that store a snapshot (its head row and parts, each with a checksum) and then prune old
 * snapshots and (with `retainEventsAfterSnapshot`) the events it covers. A snapshot is readable only once its head is
 * stored, so parts written ahead of it (in their own transactions) are invisible until then. Internal.
 */
export function prepareSnapshotStore(
  db: Database.Database,
  tables: LogTables,
  options: { retention: SnapshotRetention; clock: Clock },
): SnapshotStore {
  const t = tables;
  const { retention, clock } = options;
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
  const putParts = (seq: number, first: number, parts: readonly Buffer[]) => {
    for (const [i, part] of parts.entries()) putPart.run(seq, first + i, part, checksumOf(part));
  };
  const finish = (snapshot: ResourceLeaseQueueSnapshot, parts: number) => {
    const head = encodeSnapshotHead(snapshot, parts);
    putSnapshot.run(snapshot.lastEventSequence, clock.now(), head, checksumOf(head));
    pruneSnapshots.run(retention.retainSnapshots);
    pruneParts.run();
    if (retention.retainEventsAfterSnapshot !== undefined) {
      pruneEvents.run(snapshot.lastEventSequence - retention.retainEventsAfterSnapshot);
    }
  };
  return {
    store: db.transaction((snapshot: ResourceLeaseQueueSnapshot) => {
      const parts = [...encodeSnapshotParts(snapshot)];
      clearParts.run(snapshot.lastEventSequence);
      putParts(snapshot.lastEventSequence, 0, parts);
      finish(snapshot, parts.length);
    }),
    clear: (seq) => void clearParts.run(seq),
    putParts: db.transaction(putParts),
    finish: db.transaction(finish),
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
  snapshot: ResourceLeaseQueueSnapshot,
  between: { still: () => boolean; pause: () => Promise<void> },
): Promise<boolean> {
  const { still, pause } = between;
  const seq = snapshot.lastEventSequence;
  store.clear(seq);
  let written = 0;
  const batch: Buffer[] = [];
  for (const part of encodeSnapshotParts(snapshot)) {
    batch.push(part);
    if (batch.length < PARTS_PER_STEP) continue;
    store.putParts(seq, written, batch);
    written += batch.length;
    batch.length = 0;
    await pause();
    if (!still()) return false;
  }
  if (batch.length > 0) store.putParts(seq, written, batch);
  written += batch.length;
  if (!still()) return false;
  store.finish(snapshot, written);
  return true;
}

/**
 * The newest stored snapshot, verified, or `undefined`. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`.
 */
export function readLatestSnapshot(db: Database.Database, tables: LogTables): ResourceLeaseQueueSnapshot | undefined {
  const row = db
    .prepare<[], SnapshotRow>(`SELECT sequence, data, checksum FROM ${tables.snapshots} ORDER BY sequence DESC LIMIT 1`)
    .get();
  return row ? decodeSnapshotRow(row, readSnapshotParts(db, tables, row.sequence)) : undefined;
}
