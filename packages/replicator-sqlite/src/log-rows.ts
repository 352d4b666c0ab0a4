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
import { checksumOf, decodeRawRow, type RawEventRow, type ReadEventRow } from "./integrity.js";
import type { LogTables } from "./schema.js";

/** One event as the row it is stored in. Internal. */
export interface Row {
  readonly sequence: number;
  readonly type: number;
  readonly timestamp: number;
  /** The event's binary form (see event-codec.ts); its checksum is computed where the row is inserted. */
  readonly data: Uint8Array;
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
 * Encodes `events` as rows (binary form), checking they continue at exactly `after + 1`; a gap or repeat
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
    });
    raiseCounters(counters, event);
    expected++;
  }
  return { rows, counters };
}

/** Prepares the transaction that inserts rows (all or none), each with the checksum of its data. Internal. */
export function prepareInsertRows(db: Database.Database, tables: LogTables): (rows: readonly Row[]) => void {
  const insert = db.prepare(
    `INSERT INTO ${tables.events} (sequence, event_type, timestamp, data, checksum) VALUES (?, ?, ?, ?, ?)`,
  );
  return db.transaction((rows: readonly Row[]) => {
    for (const r of rows) insert.run(r.sequence, r.type, r.timestamp, r.data, checksumOf(r.data));
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

/** Where {@link CommittedReader} reads: a page of rows, the file (for errors), and the log's state at each page. */
export interface CommittedRows {
  /** Rows with `sequence >= from` in order, at most `limit`. */
  readonly select: (from: number, limit: number) => readonly ReadEventRow[];
  readonly path: string;
  /** The last committed sequence number now: rows above it are not read. */
  committed(): number;
  /** Whether the log has been closed since the read began. */
  closed(): boolean;
}

const PAGE = 4096;

/**
 * Reads committed events from `from` on, at most `limit`, a page at a time, verifying each row. A first row after
 * `from` is allowed (compacted away); after it a missing number is a gap, never skipped. An iterator object rather
 * than an async generator: a restart pulls a million events through it, and a generator's machinery per event costs
 * more than the event's decoding. `count` is the number of events returned so far. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`; unavailable `resourcelease.sqlite.closed`.
 */
export class CommittedReader implements AsyncIterableIterator<ResourceLeaseReplicationEvent> {
  count = 0;
  private next_: number;
  private left: number;
  private page: readonly ReadEventRow[] = [];
  private at = 0;
  private ended = false;

  constructor(
    private readonly source: CommittedRows,
    private readonly from: number,
    limit: number,
  ) {
    this.next_ = from;
    this.left = limit;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ResourceLeaseReplicationEvent>> {
    try {
      const event = this.step();
      return Promise.resolve(event ? { done: false, value: event } : { done: true, value: undefined });
    } catch (error) {
      this.ended = true;
      return Promise.reject(error);
    }
  }

  return(): Promise<IteratorResult<ResourceLeaseReplicationEvent>> {
    this.ended = true;
    return Promise.resolve({ done: true, value: undefined });
  }

  private step(): ResourceLeaseReplicationEvent | undefined {
    if (this.ended || this.left <= 0) return this.end();
    if (this.at === this.page.length) {
      // The previous page was short: nothing more was stored when it was read.
      if (this.page.length > 0 && this.page.length < PAGE) return this.end();
      if (this.source.closed()) throw closedError();
      try {
        this.page = this.source.select(this.next_, Math.min(PAGE, this.left));
      } catch (error) {
        throw fromSqliteError(error, this.source.path, this.next_);
      }
      this.at = 0;
      if (this.page.length === 0) return this.end();
    }
    const row = this.page[this.at++] as ReadEventRow;
    const sequence = row[0];
    if (sequence > this.source.committed()) return this.end();
    // The first row may start after `from` (compacted away); after it, a missing number is a gap, never skipped.
    if (sequence !== this.next_ && this.next_ !== this.from) {
      throw corruptError({
        sequence: this.next_,
        reason: "gap",
        detail: `sequence ${this.next_} is missing (the next stored one is ${sequence}).`,
      });
    }
    const event = decodeRawRow(row);
    this.next_ = sequence + 1;
    this.left--;
    this.count++;
    return event;
  }

  private end(): undefined {
    this.ended = true;
    return undefined;
  }
}
