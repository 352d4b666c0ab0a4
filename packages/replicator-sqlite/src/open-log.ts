import { existsSync } from "node:fs";
import type { OmniRelayError } from "@omnirelay/core";
import type Database from "better-sqlite3";
import { damagedError } from "./errors.js";
import { checkFilesBeforeOpen, isFilePath } from "./files.js";
import { type HighWater, highWaterPath, raiseCounters, readHighWater } from "./high-water.js";
import { decodeRawRow, type RawEventRow, scanLog } from "./integrity.js";
import { openFailedError } from "./open-errors.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import { openLogDatabase, whileLocked } from "./repair.js";
import { logTables } from "./schema.js";

/** A log opened and verified, and where the replicator over it starts. Internal. */
export interface VerifiedLog {
  readonly db: Database.Database;
  /** The newest stored sequence number (of a row or of the newest snapshot). */
  readonly last: number;
  /** Sequence number of the newest snapshot (0 when none). */
  readonly snapshot: number;
  /** Highest fencing token and item sequence id the record, the snapshot and the rows show. */
  readonly counters: { lastFencingToken: number; lastSequenceId: number };
  /** The high-water record beside the log as read before opening it (none for a new log or one not on disk). */
  readonly recorded: HighWater | undefined;
}

/**
 * Opens (creating or migrating) the log at `settings.path` and verifies it: the high-water record beside it, the
 * file's header and size, the WAL (before SQLite reads it), then the rows (see `verifyOnOpen`). The caller owns
 * (and closes) the returned database. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`; unavailable `resourcelease.sqlite.locked`;
 *   failed-precondition `resourcelease.sqlite.schema_too_new` (see `SqliteResourceLeaseReplicator.open`);
 *   unavailable `resourcelease.sqlite.write_failed` (metadata `reason`, `path`, `sqliteCode` or `errno`) when the
 *   environment prevents opening it (see `openFailedError`). Never a raw SQLite or file-system error.
 */
export function openVerifiedLog(settings: ResolvedReplicatorOptions): VerifiedLog {
  // One wait for the whole open: the checks before it find the file held too (a WAL changing under their scan), and
  // then everything is read again once the other process has let go, its last high-water record included.
  try {
    return whileLocked(settings.busyTimeoutMs, () => openAndVerify(settings));
  } catch (error) {
    throw openFailedError(error, settings.path);
  }
}

function openAndVerify(settings: ResolvedReplicatorOptions): VerifiedLog {
  const { path, table } = settings;
  const onDisk = isFilePath(path);
  // The record first: it says whether a missing or empty file is a new log or a lost one.
  const recorded = onDisk ? readHighWater(path, table) : undefined;
  if (onDisk && !existsSync(path) && recorded && recorded.lastSequence > 0) {
    throw damagedError({
      path,
      file: "log",
      reason: "missing_log",
      sequence: 1,
      detail: `the log file is missing, but its high-water record (${highWaterPath(path, table)}) says events up to ${recorded.lastSequence} were committed.`,
      metadata: { lastSequence: "0", highWaterSequence: String(recorded.lastSequence) },
    });
  }
  const files = onDisk && existsSync(path) ? checkFilesBeforeOpen(path) : undefined;
  // An emptied file (and no WAL holding its pages) is refused before SQLite turns it into an empty database.
  if (files && files.size === 0 && files.walFrames === 0 && recorded && recorded.lastSequence > 0) {
    throw behindError({ path, table, last: 0, recorded, empty: true });
  }
  const db = openLogDatabase(path, table, {
    busyTimeoutMs: settings.busyTimeoutMs,
    synchronous: settings.durability === "async" || settings.durability === "process-safe" ? "NORMAL" : "FULL",
    pageSizeBytes: settings.pageSizeBytes,
  });
  try {
    const tables = logTables(table);
    const scan = scanLog(db, tables, settings.verifyOnOpen);
    if (scan.error) throw scan.error;
    const max = db.prepare<[], { s: number | null }>(`SELECT max(sequence) AS s FROM ${tables.events}`).get()?.s ?? 0;
    const snapshot = scan.snapshot?.lastEventSequence ?? 0;
    const last = Math.max(max, snapshot);
    if (recorded && last < recorded.lastSequence) {
      throw behindError({ path, table, last, recorded, empty: false });
    }
    // Counters: the record's and the snapshot's, raised by every row neither of them covers.
    const counters = {
      lastFencingToken: Math.max(recorded?.lastFencingToken ?? 0, scan.snapshot?.lastFencingToken ?? 0),
      lastSequenceId: Math.max(recorded?.lastSequenceId ?? 0, scan.snapshot?.lastSequenceId ?? 0),
    };
    const covered = Math.max(recorded?.lastSequence ?? 0, snapshot);
    const rows = db
      .prepare<[number], RawEventRow>(
        `SELECT sequence, event_type, data, checksum FROM ${tables.events} WHERE sequence > ? ORDER BY sequence`,
      )
      .raw(true)
      .iterate(covered);
    for (const row of rows) raiseCounters(counters, decodeRawRow(row));
    return { db, last, snapshot, counters, recorded };
  } catch (error) {
    db.close();
    throw error;
  }
}

function behindError({
  path,
  table,
  last,
  recorded,
  empty,
}: {
  path: string;
  table: string;
  last: number;
  recorded: HighWater;
  empty: boolean;
}): OmniRelayError {
  return damagedError({
    path,
    file: "log",
    reason: "behind_high_water",
    sequence: last + 1,
    detail: `${empty ? "the file is empty (0 bytes): " : ""}the log ends at sequence ${last}, but its high-water record (${highWaterPath(path, table)}) says events up to ${recorded.lastSequence} were committed. They are lost: the file was truncated, replaced, or an old backup was put in its place.`,
    metadata: { lastSequence: String(last), highWaterSequence: String(recorded.lastSequence) },
  });
}
