import {
  ErrorCodes,
  OmniRelayError,
  ResourceLeaseEventTypes,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import type Database from "better-sqlite3";
import { closedError, corruptError, fromSqliteError } from "./errors.js";
import { encodeEventBinary } from "./event-codec.js";
import { raiseCounters } from "./high-water.js";
import { checksumOf, decodeRawRow, type RawEventRow } from "./integrity.js";
import type { LogTables } from "./schema.js";

/** One event as the row it is stored in. Internal. */
export interface Row {
  readonly sequence: number;
  readonly type: number;
  readonly timestamp: number;
  /** The event's binary form (see event-codec.ts). */
  readonly data: Buffer;
  readonly checksum: string;
}

/** Highest fencing token and item sequence id of some events. Internal. */
export interface Counters {
  lastFencingToken: number;
  lastSequenceId: number;
}

/** A publish's rows waiting for a commit, and how to settle the publish. Internal. */
export interface Pending {
  readonly rows: readonly Row[];
  /** Highest fencing token and item sequence id of the rows' events. */
  readonly counters: Counters;
  readonly resolve: (() => void) | undefined;
  readonly reject: ((error: unknown) => void) | undefined;
}

/** A publish as rows, or the sequence gap that refuses it. Internal. */
export type EncodedPublish =
  | { readonly rows: Row[]; readonly counters: Counters; readonly gap?: undefined }
  | { readonly gap: OmniRelayError };

/**
 * Encodes `events` as rows (binary form and its checksum), checking they continue at exactly `after + 1`; a gap or repeat
 * is returned as `resourcelease.sqlite.sequence_gap`. Internal.
 */
export function encodePublish(events: readonly ResourceLeaseReplicationEvent[], after: number): EncodedPublish {
  const rows: Row[] = [];
  const counters = { lastFencingToken: 0, lastSequenceId: 0 };
  let expected = after + 1;
  for (const event of events) {
    if (event?.sequenceNumber !== expected) {
      const gap = new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.sqlite.sequenceGap,
        message: `Event ${String(event?.sequenceNumber)} does not follow ${expected - 1}; the log accepts exactly the next sequence number.`,
        metadata: { sequence: String(event?.sequenceNumber), expected: String(expected) },
      });
      return { gap };
    }
    const data = encodeEventBinary(event);
    rows.push({
      sequence: expected,
      type: ResourceLeaseEventTypes[event.eventType],
      timestamp: event.timestamp,
      data,
      checksum: checksumOf(data),
    });
    raiseCounters(counters, event);
    expected++;
  }
  return { rows, counters };
}

/** Prepares the transaction that inserts rows (all or none). Internal. */
export function prepareInsertRows(db: Database.Database, tables: LogTables): (rows: readonly Row[]) => void {
  const insert = db.prepare(
    `INSERT INTO ${tables.events} (sequence, event_type, timestamp, data, checksum) VALUES (?, ?, ?, ?, ?)`,
  );
  return db.transaction((rows: readonly Row[]) => {
    for (const r of rows) insert.run(r.sequence, r.type, r.timestamp, r.data, r.checksum);
  });
}

/** The statement that reads a page of rows from a sequence number on. Internal. */
export type SelectRows = Database.Statement<[number, number], RawEventRow>;

/** Prepares {@link SelectRows} (raw rows, for {@link decodeRawRow}). Internal. */
export function prepareSelectRows(db: Database.Database, tables: LogTables): SelectRows {
  return db
    .prepare<[number, number], RawEventRow>(
      `SELECT sequence, event_type, data, checksum FROM ${tables.events} WHERE sequence >= ? ORDER BY sequence LIMIT ?`,
    )
    .raw(true);
}

/** Where {@link readCommitted} reads: the statement, the file (for errors), and the log's state at each page. */
export interface CommittedRows {
  readonly select: SelectRows;
  readonly path: string;
  /** The last committed sequence number now: rows above it are not read. */
  committed(): number;
  /** Whether the log has been closed since the read began. */
  closed(): boolean;
}

const PAGE = 512;

/**
 * Reads committed events from `from` on, at most `limit`, a page at a time, verifying each row. A first row after
 * `from` is allowed (compacted away); after it a missing number is a gap, never skipped. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`; unavailable `resourcelease.sqlite.closed`.
 */
export async function* readCommitted(
  source: CommittedRows,
  from: number,
  limit: number,
): AsyncGenerator<ResourceLeaseReplicationEvent> {
  let next = from;
  let left = limit;
  while (left > 0) {
    if (source.closed()) throw closedError();
    let page: RawEventRow[];
    try {
      page = source.select.all(next, Math.min(PAGE, left));
    } catch (error) {
      throw fromSqliteError(error, source.path, next);
    }
    for (const row of page) {
      const sequence = row[0];
      if (sequence > source.committed()) return;
      // The first row may start after `from` (compacted away); after it, a missing number is a gap, never skipped.
      if (sequence !== next && next !== from) {
        throw corruptError({
          sequence: next,
          reason: "gap",
          detail: `sequence ${next} is missing (the next stored one is ${sequence}).`,
        });
      }
      yield decodeRawRow(row);
      next = sequence + 1;
      left--;
    }
    if (page.length < PAGE) return;
  }
}
