import { hash } from "node:crypto";
import { crc32 } from "node:zlib";
import {
  ResourceLeaseEventTypes,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import type { ResourceLeaseSnapshotInPieces, ResourceLeaseSnapshotPiece } from "@omnirelay/core/replication";
import { decodeReplicationEvent } from "@omnirelay/core/wire";
import type BetterSqlite3 from "better-sqlite3";
import { corruptError } from "./errors.js";
import { decodeEventBinary } from "./event-codec.js";
import type { LogTables } from "./schema.js";
import { decodeSnapshot, decodeSnapshotHead, decodeSnapshotInPieces, decodeSnapshotPiece } from "./snapshot-codec.js";

type Database = BetterSqlite3.Database;

/**
 * A stored event row as `[sequence, event_type, data, checksum]` (a raw statement: no object per row): `data` is the
 * event's binary form (a BLOB, schema version 4 on) or its JSON text (rows written before). Internal.
 */
export type RawEventRow = readonly [number, number, string | Buffer, string];

/**
 * A row as a page read returns it: a {@link RawEventRow}, or one whose checksum the thread that read it has already
 * checked (`true`: it matched, `false`: it did not) — the writer thread checks each page's rows while this thread
 * applies the page before it, so a restart's checksums cost this thread nothing. Internal.
 */
export type ReadEventRow = readonly [number, number, string | Buffer, string | boolean];

/** A stored snapshot row. Internal. */
export interface SnapshotRow {
  readonly sequence: number;
  readonly data: string;
  readonly checksum: string;
}

/**
 * Checksum of a row's JSON text as stored: CRC-32 in 8 hex digits (zlib's, native). It guards against torn or
 * corrupted rows, not against someone rewriting the file (who could rewrite the checksum too), so a CRC — what
 * SQLite's WAL and Kafka's records use — is enough, and it is several times cheaper than a SHA-256 on every row at
 * every restart. Internal.
 */
export function checksumOf(data: string | Uint8Array): string {
  return crc32(data).toString(16).padStart(8, "0");
}

/**
 * Whether `checksum` matches `data` as stored: CRC-32 (8 hex digits), or the SHA-256 (64 digits) that versions
 * before the CRC stored for their JSON rows. Internal.
 */
export function checksumMatches(data: string | Uint8Array, checksum: string): boolean {
  if (checksum.length === 64) return typeof data === "string" && hash("sha256", data, "hex") === checksum;
  // Compared as numbers (no hex string per row); 8 digits, each a hex digit or parseInt stops short of the CRC.
  return checksum.length === 8 && Number.parseInt(checksum, 16) === crc32(data) && isHex8(checksum);
}

function isHex8(s: string): boolean {
  for (let i = 0; i < 8; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/**
 * Verifies and decodes one row: checksum (over the stored bytes or text), the event's binary form (its own decoder) or
 * its JSON text (the wire's decoder, log mode), and that the event's sequence number and type match the row's
 * columns. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt` naming the row's sequence.
 */
export function decodeRawRow([sequence, eventType, data, checksum]: ReadEventRow): ResourceLeaseReplicationEvent {
  const form = typeof data === "string" ? "JSON" : "data";
  if (typeof checksum === "boolean" ? !checksum : !checksumMatches(data, checksum)) {
    throw corruptError({
      sequence,
      reason: "checksum",
      detail: `the stored checksum does not match the event ${form}.`,
    });
  }
  let event: ResourceLeaseReplicationEvent;
  try {
    event = typeof data === "string" ? decodeReplicationEvent(JSON.parse(data)) : decodeEventBinary(data);
  } catch (error) {
    throw corruptError({ sequence, reason: "decode", detail: `the event ${form} does not decode.`, cause: error });
  }
  if (event.sequenceNumber !== sequence || ResourceLeaseEventTypes[event.eventType] !== eventType) {
    throw corruptError({
      sequence,
      reason: "mismatch",
      detail: `the event ${form} does not match the row's sequence or type.`,
    });
  }
  return event;
}

/** A stored snapshot part row. Internal. */
export interface SnapshotPartRow {
  readonly part: number;
  /** Binary (snapshot head version 3) or JSON text (version 2). */
  readonly data: string | Buffer;
  readonly checksum: string;
}

/** Reads the part rows of the snapshot at `sequence`, in order. Internal. */
export function readSnapshotParts(db: Database, tables: LogTables, sequence: number): SnapshotPartRow[] {
  return db
    .prepare<[number], SnapshotPartRow>(
      `SELECT part, data, checksum FROM ${tables.snapshotParts} WHERE sequence = ? ORDER BY part`,
    )
    .all(sequence);
}

/** The part numbers of the snapshot at `sequence`, in order, without their bytes (from the table's key). Internal. */
export function readSnapshotPartNumbers(db: Database, tables: LogTables, sequence: number): number[] {
  return db
    .prepare<[number], number>(`SELECT part FROM ${tables.snapshotParts} WHERE sequence = ? ORDER BY part`)
    .pluck()
    .all(sequence);
}

/** Checks a snapshot's checksums: its head row and every part row, numbered from 0 without a hole. */
function checkSnapshotSums(row: SnapshotRow, parts: readonly SnapshotPartRow[]): void {
  if (!checksumMatches(row.data, row.checksum)) {
    throw corruptError({
      sequence: row.sequence,
      reason: "snapshot_checksum",
      detail: "the snapshot's checksum does not match its JSON.",
    });
  }
  for (const [i, part] of parts.entries()) checkSnapshotPart(row.sequence, i, part);
}

function snapshotDecodeError(sequence: number, cause: unknown): Error {
  return corruptError({ sequence, reason: "snapshot_decode", detail: "the snapshot does not decode.", cause });
}

/**
 * Verifies and decodes a snapshot: its head row and every part row (checksums, decoding, the announced number of
 * parts, numbered from 0 without a hole). Internal. @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`.
 */
export function decodeSnapshotRow(row: SnapshotRow, parts: readonly SnapshotPartRow[]): ResourceLeaseQueueSnapshot {
  checkSnapshotSums(row, parts);
  try {
    const snapshot = decodeSnapshot(
      row.data,
      parts.map((p) => p.data),
    );
    if (snapshot.lastEventSequence !== row.sequence) throw new Error("sequence mismatch");
    return snapshot;
  } catch (error) {
    throw snapshotDecodeError(row.sequence, error);
  }
}

/**
 * Verifies a snapshot as {@link decodeSnapshotRow} does — every checksum and its head at once — but decodes its parts
 * one at a time, as the pieces are read (each part's bytes let go of once decoded). Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`: at once for a checksum or the head, from the pieces
 *   for a part that does not decode.
 */
export function decodeSnapshotRowInPieces(
  row: SnapshotRow,
  parts: readonly SnapshotPartRow[],
): ResourceLeaseSnapshotInPieces {
  checkSnapshotSums(row, parts);
  let decoded: ResourceLeaseSnapshotInPieces;
  try {
    decoded = decodeSnapshotInPieces(
      row.data,
      parts.map((p) => p.data),
    );
    if (decoded.head.lastEventSequence !== row.sequence) throw new Error("sequence mismatch");
  } catch (error) {
    throw snapshotDecodeError(row.sequence, error);
  }
  return { head: decoded.head, pieces: mapErrors(decoded.pieces, (error) => snapshotDecodeError(row.sequence, error)) };
}

/** `items`, with what reading them throws mapped by `map` (errors met lazily, mapped as those met at once). Internal. */
export function* mapErrors<T>(items: Iterable<T>, map: (error: unknown) => unknown): Generator<T> {
  const it = items[Symbol.iterator]();
  for (;;) {
    let next: IteratorResult<T>;
    try {
      next = it.next();
    } catch (error) {
      throw map(error);
    }
    if (next.done) return;
    yield next.value;
  }
}

/**
 * Verifies a snapshot's head row (checksum, head) at once and reads its `count` part rows page by page through `page`
 * (the rows from part `from` on), verifying and decoding each part (checksum, numbering, bytes) as the pieces reach it:
 * no more than a page of parts is held at a time, and a page can be read while the previous one is restored. An
 * `'on-read'` open of the log checked only that the parts are there ({@link checkSnapshotHead}); this is where their
 * bytes are verified.
 * An older snapshot (version 1 or 2) is read whole, as {@link decodeSnapshotRowInPieces}. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`: at once for the head, from the pieces for a part.
 */
export function decodeSnapshotInPages(
  row: SnapshotRow,
  count: number,
  page: (from: number) => readonly SnapshotPartRow[],
): ResourceLeaseSnapshotInPieces {
  checkSnapshotSums(row, []);
  let head: ResourceLeaseSnapshotInPieces["head"] | undefined;
  try {
    head = decodeSnapshotHead(row.data, count);
    if (head && head.lastEventSequence !== row.sequence) throw new Error("sequence mismatch");
  } catch (error) {
    throw snapshotDecodeError(row.sequence, error);
  }
  if (!head) {
    const parts: SnapshotPartRow[] = [];
    for (let rows = page(0); rows.length > 0; rows = page(parts.length)) parts.push(...rows);
    return decodeSnapshotRowInPieces(row, parts);
  }
  const withVirtualTime = head.dispatchVirtualTime !== undefined;
  return { head, pieces: pagedPieces({ sequence: row.sequence, count, withVirtualTime }, page) };
}

function* pagedPieces(
  { sequence, count, withVirtualTime }: { sequence: number; count: number; withVirtualTime: boolean },
  page: (from: number) => readonly SnapshotPartRow[],
): Generator<ResourceLeaseSnapshotPiece> {
  let i = 0;
  while (i < count) {
    const rows = page(i);
    if (rows.length === 0) checkSnapshotPart(sequence, i, undefined);
    for (const part of rows) {
      if (i >= count) break;
      checkSnapshotPart(sequence, i, part);
      let piece: ResourceLeaseSnapshotPiece;
      try {
        piece = decodeSnapshotPiece(part.data, withVirtualTime);
      } catch (error) {
        throw snapshotDecodeError(sequence, error);
      }
      i++;
      yield piece;
    }
  }
}

function checkSnapshotPart(sequence: number, i: number, part: SnapshotPartRow | undefined): void {
  if (part === undefined || part.part !== i || !checksumMatches(part.data, part.checksum)) missingPart(sequence, i);
}

function missingPart(sequence: number, i: number): never {
  throw corruptError({
    sequence,
    reason: "snapshot_checksum",
    detail: `part ${i} of the snapshot is missing or corrupt.`,
  });
}

/** The counters of a snapshot, from its head. Internal. */
export type SnapshotCounters = Pick<
  ResourceLeaseQueueSnapshot,
  "lastEventSequence" | "lastFencingToken" | "lastSequenceId"
>;

/**
 * Verifies a snapshot's head row (checksum, head) and that its parts are all there (numbered from 0 without a hole),
 * from the part numbers alone: the parts' bytes and checksums are left to the read that loads them
 * ({@link decodeSnapshotInPages}), so an `'on-read'` open does not read a large snapshot twice. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`.
 */
export function checkSnapshotHead(row: SnapshotRow, partNumbers: readonly number[]): SnapshotCounters {
  checkSnapshotSums(row, []);
  for (let i = 0; i < partNumbers.length; i++) {
    if (partNumbers[i] !== i) missingPart(row.sequence, i);
  }
  return snapshotCounters(row, partNumbers.length);
}

function snapshotCounters(row: SnapshotRow, parts: number): SnapshotCounters {
  try {
    const head = JSON.parse(row.data) as Partial<SnapshotCounters> & { parts?: number; version?: number };
    const { lastEventSequence, lastFencingToken, lastSequenceId } = head;
    const ints = [lastEventSequence, lastFencingToken, lastSequenceId];
    if (!ints.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) throw new Error("bad counters");
    if (lastEventSequence !== row.sequence) throw new Error("sequence mismatch");
    if (head.version !== 1 && head.parts !== parts) throw new Error("parts are missing");
    return {
      lastEventSequence: row.sequence,
      lastFencingToken: lastFencingToken ?? 0,
      lastSequenceId: lastSequenceId ?? 0,
    };
  } catch (error) {
    throw snapshotDecodeError(row.sequence, error);
  }
}

/** What {@link scanLog} found. Internal. */
export interface ScanResult {
  /** The counters of the newest valid snapshot, if any (`'on-read'` checks its head and that its parts are there). */
  readonly snapshot: SnapshotCounters | undefined;
  /** Last sequence number that is stored intact (or covered by the snapshot); 0 for an empty log. */
  readonly lastGood: number;
  /** Rows checked. */
  readonly checked: number;
  /** The first problem, when there is one. */
  readonly error: Error | undefined;
  /** Sequence number where the first problem is (everything from here on is suspect). */
  readonly badSequence: number | undefined;
}

/**
 * Checks the log: the newest snapshot (`'on-read'`: its head and that its parts are there, leaving their bytes to
 * the one read that loads them), then every row (`'all'`), the rows after the snapshot (`'tail'`) or none
 * (`'on-read'`), in order, for a gap, a checksum mismatch or undecodable data. Stops at the first problem. Internal.
 */
export function scanLog(db: Database, tables: LogTables, mode: "all" | "tail" | "on-read"): ScanResult {
  const snapRow = db
    .prepare<[], SnapshotRow>(`SELECT sequence, data, checksum FROM ${tables.snapshots} ORDER BY sequence DESC LIMIT 1`)
    .get();
  let snapshot: SnapshotCounters | undefined;
  if (snapRow) {
    try {
      snapshot =
        mode === "on-read"
          ? checkSnapshotHead(snapRow, readSnapshotPartNumbers(db, tables, snapRow.sequence))
          : decodeSnapshotRow(snapRow, readSnapshotParts(db, tables, snapRow.sequence));
    } catch (error) {
      return { snapshot: undefined, lastGood: 0, checked: 0, error: error as Error, badSequence: snapRow.sequence };
    }
  }
  const base = snapshot?.lastEventSequence ?? 0;
  const head = db.prepare<[], { s: number | null }>(`SELECT min(sequence) AS s FROM ${tables.events}`).get()?.s ?? null;
  if (head !== null && head > base + 1) {
    const error = corruptError({
      sequence: base + 1,
      reason: "missing_head",
      detail: `the log starts at ${head} but ${snapshot ? `the newest snapshot ends at ${base}` : "there is no snapshot"}.`,
    });
    return { snapshot, lastGood: base, checked: 0, error, badSequence: base + 1 };
  }
  if (mode === "on-read") return { snapshot, lastGood: base, checked: 0, error: undefined, badSequence: undefined };
  const from = mode === "all" && head !== null ? head : base + 1;
  let expected = from;
  let checked = 0;
  const rows = db
    .prepare<[number], RawEventRow>(
      `SELECT sequence, event_type, data, checksum FROM ${tables.events} WHERE sequence >= ? ORDER BY sequence`,
    )
    .raw(true)
    .iterate(from);
  for (const row of rows) {
    if (row[0] !== expected) {
      const error = corruptError({
        sequence: expected,
        reason: "gap",
        detail: `sequence ${expected} is missing (the next stored one is ${row[0]}).`,
      });
      return { snapshot, lastGood: expected - 1, checked, error, badSequence: expected };
    }
    try {
      decodeRawRow(row);
    } catch (error) {
      return { snapshot, lastGood: expected - 1, checked, error: error as Error, badSequence: expected };
    }
    checked++;
    expected++;
  }
  return { snapshot, lastGood: Math.max(base, expected - 1), checked, error: undefined, badSequence: undefined };
}
