import type { ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseSnapshotInPieces } from "@omnirelay/core/replication";
import type Database from "better-sqlite3";
import type { CommitDone } from "./group-commit.js";
import type { HighWater } from "./high-water.js";
import { decodeSnapshotInPages, type ReadEventRow } from "./integrity.js";
import { type Counters, prepareInsertRows, prepareSelectRows, type Row } from "./log-rows.js";
import {
  prepareSnapshotRows,
  readLatestSnapshot,
  readLatestSnapshotHead,
  readSnapshotPartsPage,
  SNAPSHOT_PARTS_PER_PAGE,
  type SnapshotRows,
} from "./log-snapshots.js";
import { openVerifiedLog } from "./open-log.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import { logTables } from "./schema.js";
import { watchUnlink } from "./unlink-watch.js";

/**
 * The SQLite connection of a log, wherever it lives: on this thread ({@link localLogStore}) or on the writer thread
 * (`ThreadLogStore`). Only `commit` and `backup` may complete later; the rest answer at once. Internal.
 */
export interface LogStore {
  /** Inserts each transaction's rows and commits it, in order; reports through `done`. Never throws. */
  commit(txs: readonly (readonly Row[])[], done: CommitDone): void;
  /** Rows with `sequence >= from` in order, at most `limit`. @throws the SQLite error. */
  selectPage(from: number, limit: number): readonly ReadEventRow[];
  /** The newest snapshot, verified. @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`, or SQLite's. */
  latestSnapshot(): ResourceLeaseQueueSnapshot | undefined;
  /** The newest snapshot, its head verified, its parts read and verified as its pieces are read. @throws as {@link latestSnapshot}. */
  latestSnapshotInPieces(): ResourceLeaseSnapshotInPieces | undefined;
  readonly snapshots: SnapshotRows;
  backup(toPath: string): Promise<void>;
  /** Closes the connection (checkpointing the WAL) and, for the writer thread, ends the thread. */
  close(): Promise<void>;
}

/** Where a replicator over a just-verified log starts (see `openVerifiedLog`). Internal. */
export interface LogStart {
  readonly last: number;
  readonly snapshot: number;
  readonly counters: Counters;
  readonly recorded: HighWater | undefined;
}

/** A {@link LogStore} over a connection on this thread: every call runs (and blocks) here. Internal. */
export function localLogStore(
  db: Database.Database,
  settings: ResolvedReplicatorOptions,
): LogStore & { readonly db: Database.Database } {
  const tables = logTables(settings.table);
  const insertAll = prepareInsertRows(db, tables);
  const select = prepareSelectRows(db, tables);
  const unlinked = watchUnlink(settings.path);
  let lost: Error | undefined;
  return {
    // The connection, for the package's own tests (pragmas).
    db,
    commit(txs, done) {
      let committed = 0;
      for (const tx of txs) {
        try {
          if (lost) throw lost;
          insertAll(tx);
          lost = unlinked.lost();
          if (lost) throw lost;
        } catch (error) {
          done(committed, error);
          return;
        }
        committed++;
      }
      done(committed);
    },
    selectPage: (from, limit) => select.all(from, limit),
    latestSnapshot: () => readLatestSnapshot(db, tables),
    latestSnapshotInPieces: () => {
      const head = readLatestSnapshotHead(db, tables);
      if (!head) return undefined;
      const sequence = head.row.sequence;
      const limit = SNAPSHOT_PARTS_PER_PAGE;
      return decodeSnapshotInPages(head.row, head.parts, (from) =>
        readSnapshotPartsPage(db, tables, { sequence, from, limit }),
      );
    },
    snapshots: prepareSnapshotRows(db, tables, settings),
    backup: async (toPath) => {
      await db.backup(toPath);
    },
    close: async () => {
      db.close();
      unlinked.close(); // after the connection: closing a descriptor of the file drops this process's locks on it
    },
  };
}

/**
 * Opens and verifies the log (see `openVerifiedLog`) on this thread or, with `writerThread`, on a writer thread of
 * its own. @throws the coded errors of opening the log.
 */
export async function openLogStore(settings: ResolvedReplicatorOptions): Promise<{ store: LogStore; start: LogStart }> {
  if (settings.writerThread) {
    const { ThreadLogStore } = await import("./thread-log.js");
    return ThreadLogStore.open(settings);
  }
  const { db, ...start } = openVerifiedLog(settings);
  try {
    return { store: localLogStore(db, settings), start };
  } catch (error) {
    db.close();
    throw error;
  }
}
