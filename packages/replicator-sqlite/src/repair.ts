import { OmniRelayError } from "@omnirelay/core";
import Database from "better-sqlite3";
import { invalidOption, quoteTableName, SqliteErrorCodes } from "./codes.js";
import { scanLog } from "./integrity.js";
import { logMigrations, logTables, migrate } from "./schema.js";

/** Options of {@link SqliteResourceLeaseReplicator.repair}. */
export interface SqliteLogRepairOptions {
  /** Must be `true`: repair deletes the first bad row and every row after it. */
  readonly truncateAfterLastGood: true;
  /** Events table name. @defaultValue 'resourcelease_events' */
  readonly table?: string;
}

/** What a repair found and dropped. */
export interface SqliteLogRepairReport {
  /** False when the log was healthy and nothing was changed. */
  readonly repaired: boolean;
  /** Last sequence number kept. */
  readonly lastGoodSequence: number;
  /** The first bad sequence number, when there was one. */
  readonly firstBadSequence?: number;
  /** Why it was bad: `checksum`, `decode`, `mismatch`, `gap`, `missing_head`, `snapshot_checksum`, `snapshot_decode`. */
  readonly reason?: string;
  /** Event rows deleted. */
  readonly droppedEvents: number;
  /** Sequence numbers of the deleted event rows, lowest and highest. */
  readonly droppedRange?: readonly [number, number];
  /** Snapshot rows deleted (corrupt ones, or ones past the last good event). */
  readonly droppedSnapshots: number;
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
    if ((error as { code?: string }).code === "SQLITE_BUSY") {
      throw new OmniRelayError({
        status: "unavailable",
        code: SqliteErrorCodes.locked,
        message: `The SQLite log '${path}' is open in another process; only one process may write a log.`,
        metadata: { path },
        cause: error,
      });
    }
    throw error;
  }
}

/** Implements {@link SqliteResourceLeaseReplicator.repair}. Internal. */
export async function repairLog(path: string, options: SqliteLogRepairOptions): Promise<SqliteLogRepairReport> {
  if (options?.truncateAfterLastGood !== true) {
    throw invalidOption("truncateAfterLastGood", "repair deletes data; pass { truncateAfterLastGood: true }.");
  }
  const table = options.table ?? "resourcelease_events";
  const db = openLogDatabase(path, table, { busyTimeoutMs: 5000, synchronous: "FULL" });
  try {
    const tables = logTables(table);
    let droppedSnapshots = 0;
    let scan = scanLog(db, tables, "all");
    // A corrupt snapshot is dropped and the scan repeated with the next one.
    while (scan.error && (scan.error as OmniRelayError).metadata?.reason?.startsWith("snapshot_")) {
      droppedSnapshots += db
        .prepare(`DELETE FROM ${tables.snapshots} WHERE sequence = ?`)
        .run(scan.badSequence).changes;
      db.prepare(`DELETE FROM ${tables.snapshotParts} WHERE sequence = ?`).run(scan.badSequence);
      scan = scanLog(db, tables, "all");
    }
    if (!scan.error) {
      return { repaired: droppedSnapshots > 0, lastGoodSequence: scan.lastGood, droppedEvents: 0, droppedSnapshots };
    }
    const bad = scan.badSequence ?? scan.lastGood + 1;
    const range = db
      .prepare<[number], { lo: number | null; hi: number | null; n: number }>(
        `SELECT min(sequence) AS lo, max(sequence) AS hi, count(*) AS n FROM ${tables.events} WHERE sequence > ?`,
      )
      .get(scan.lastGood);
    const drop = db.transaction(() => {
      const events = db.prepare(`DELETE FROM ${tables.events} WHERE sequence > ?`).run(scan.lastGood).changes;
      const snaps = db.prepare(`DELETE FROM ${tables.snapshots} WHERE sequence > ?`).run(scan.lastGood).changes;
      db.prepare(`DELETE FROM ${tables.snapshotParts} WHERE sequence > ?`).run(scan.lastGood);
      return { events, snaps };
    });
    const dropped = drop.immediate();
    const reason = (scan.error as OmniRelayError).metadata?.reason;
    return {
      repaired: true,
      lastGoodSequence: scan.lastGood,
      firstBadSequence: bad,
      ...(reason !== undefined ? { reason } : {}),
      droppedEvents: dropped.events,
      ...(range?.lo != null && range.hi != null ? { droppedRange: [range.lo, range.hi] as const } : {}),
      droppedSnapshots: droppedSnapshots + dropped.snaps,
    };
  } finally {
    db.close();
  }
}
