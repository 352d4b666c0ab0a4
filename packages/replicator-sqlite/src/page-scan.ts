import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import type { HighWater } from "./high-water.js";
import { checksumMatches } from "./integrity.js";
import { isWalMagic, validPageSize } from "./wal.js";

// Repair must continue above every number a damaged log still shows, also where SQLite cannot read it (a damaged
// header, WAL frames after a bad one). This reads the file's pages by hand: the rows of every table b-tree leaf page,
// located through the page's own cell pointers, so a caller's bytes (a body, a string) are never mistaken for a row.
// An event row in binary form names its numbers in a fixed head; a row of JSON text (events before schema version 4,
// snapshots) is searched for the numbers as its JSON spells them. Never throws.

const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
const DEFAULT_PAGE = 4096;
const CHUNK_PAGES = 256;
const NUMBERS =
  /"(sequenceNumber|lastEventSequence|fencingToken|lastFencingToken|sequenceId|lastSequenceId)":(\d{1,16})[,}]/g;

type Found = { lastSequence: number; lastFencingToken: number; lastSequenceId: number };

/** Reads page `n` (1-based) of the database, or undefined. */
type PageAt = (n: number) => Buffer | undefined;

/**
 * The highest event sequence number, fencing token and item sequence id held by the rows of the database file or WAL
 * at `file`. Internal.
 */
export function scanNumbers(file: string): HighWater {
  const found: Found = { lastSequence: 0, lastFencingToken: 0, lastSequenceId: 0 };
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const head = Buffer.alloc(100);
    readSync(fd, head, 0, 100, 0);
    if (file.endsWith("-wal")) scanWal(fd, head, { found, file });
    else scanDatabase(fd, head, found);
  } catch {
    // best effort: what was read so far stands
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return found;
}

function pageSizeOf(head: Buffer): number {
  if (!head.subarray(0, 16).equals(SQLITE_MAGIC)) return DEFAULT_PAGE;
  const raw = head.readUInt16BE(16);
  const size = raw === 1 ? 65536 : raw;
  return validPageSize(size) ? size : DEFAULT_PAGE;
}

function fileReader(fd: number, size: number): PageAt {
  const count = Math.floor(fstatSync(fd).size / size);
  return (n) => {
    if (!(n >= 1 && n <= count)) return undefined;
    const page = Buffer.alloc(size);
    return readSync(fd, page, 0, size, (n - 1) * size) === size ? page : undefined;
  };
}

function scanDatabase(fd: number, head: Buffer, found: Found): void {
  const size = pageSizeOf(head);
  const pageAt = fileReader(fd, size);
  const chunk = Buffer.alloc(size * CHUNK_PAGES);
  for (let first = 1; ; first += CHUNK_PAGES) {
    const read = readSync(fd, chunk, 0, chunk.length, (first - 1) * size);
    for (let i = 0; (i + 1) * size <= read; i++) {
      scanPage(chunk.subarray(i * size, (i + 1) * size), first + i === 1, { found, pageAt });
    }
    if (read < chunk.length) return;
  }
}

function scanWal(fd: number, head: Buffer, into: { found: Found; file: string }): void {
  const { found, file } = into;
  const db = file.slice(0, -"-wal".length);
  // A damaged header: the page size is the one whose frames line up (see `framedPageSize`), else the database's.
  const stated = isWalMagic(head.readUInt32BE(0)) ? head.readUInt32BE(8) : 0;
  const size = validPageSize(stated) ? stated : (framedPageSize(fd) ?? databasePageSize(db));
  const frame = 24 + size;
  const frames = Math.floor((fstatSync(fd).size - 32) / frame);
  // Overflow pages: the newest copy in the WAL, else the database file's.
  const latest = new Map<number, number>();
  const header = Buffer.alloc(24);
  for (let i = 0; i < frames; i++) {
    if (readSync(fd, header, 0, 24, 32 + i * frame) === 24) latest.set(header.readUInt32BE(0), i);
  }
  const dbFd = existsSync(db) ? openSync(db, "r") : undefined;
  try {
    const fromDb = dbFd === undefined ? () => undefined : fileReader(dbFd, size);
    const readFrame = (i: number) => {
      const page = Buffer.alloc(size);
      return readSync(fd, page, 0, size, 32 + i * frame + 24) === size ? page : undefined;
    };
    const pageAt: PageAt = (n) => {
      const i = latest.get(n);
      return i === undefined ? fromDb(n) : readFrame(i);
    };
    for (let i = 0; i < frames; i++) {
      if (readSync(fd, header, 0, 24, 32 + i * frame) !== 24) return;
      const page = readFrame(i);
      if (page) scanPage(page, header.readUInt32BE(0) === 1, { found, pageAt });
    }
  } finally {
    if (dbFd !== undefined) closeSync(dbFd);
  }
}

/**
 * The page size of a WAL whose header cannot say: the first size at which its first frames all carry the same salts
 * (every frame of one WAL generation copies them from the header) and a page number; undefined when fewer than two
 * frames are there to line up.
 */
function framedPageSize(fd: number): number | undefined {
  const size = fstatSync(fd).size;
  const first = Buffer.alloc(24);
  const next = Buffer.alloc(24);
  if (readSync(fd, first, 0, 24, 32) !== 24) return undefined;
  for (let p = 512; p <= 65536; p *= 2) {
    const frames = Math.min(4, Math.floor((size - 32) / (24 + p)));
    if (frames < 2) continue;
    let lined = first.readUInt32BE(0) > 0;
    for (let i = 1; lined && i < frames; i++) {
      lined =
        readSync(fd, next, 0, 24, 32 + i * (24 + p)) === 24 &&
        next.readUInt32BE(0) > 0 &&
        next.readUInt32BE(8) === first.readUInt32BE(8) &&
        next.readUInt32BE(12) === first.readUInt32BE(12);
    }
    if (lined) return p;
  }
  return undefined;
}

/** The page size the database file's header states (SQLite writes it when the file is made), else SQLite's default. */
function databasePageSize(db: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(db, "r");
    const head = Buffer.alloc(100);
    return readSync(fd, head, 0, 100, 0) === 100 ? pageSizeOf(head) : DEFAULT_PAGE;
  } catch {
    return DEFAULT_PAGE;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** SQLite's varint: big-endian groups of 7 bits, the ninth byte whole. Returns [value, bytes]. */
function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  for (let i = 0; i < 9; i++) {
    const byte = b[at + i];
    if (byte === undefined) return [Number.NaN, i + 1];
    if (i === 8) return [v * 256 + byte, 9];
    v = v * 128 + (byte & 0x7f);
    if (byte < 0x80) return [v, i + 1];
  }
  return [v, 9];
}

/** A table leaf page (0x0D): each cell's rowid and record, read with {@link scanRecord}. */
function scanPage(page: Buffer, first: boolean, ctx: { found: Found; pageAt: PageAt }): void {
  const at = first ? 100 : 0;
  if (page[at] !== 0x0d) return;
  const cells = page.readUInt16BE(at + 3);
  const usable = page.length;
  for (let i = 0; i < cells; i++) {
    const pointerAt = at + 8 + 2 * i;
    if (pointerAt + 2 > page.length) return;
    const cell = page.readUInt16BE(pointerAt);
    if (cell < at + 8 || cell >= page.length) continue;
    const [length, n1] = varint(page, cell);
    const [rowid, n2] = varint(page, cell + n1);
    if (!Number.isSafeInteger(length) || !Number.isSafeInteger(rowid)) continue;
    const payload = payloadOf(page, { start: cell + n1 + n2, length, usable, pageAt: ctx.pageAt });
    if (payload) scanRecord(rowid, payload, ctx.found);
  }
}

/**
 * A record as far as it could be read: the bytes stored in the cell itself (`local`, trusted: located through the
 * page's structure), then its overflow pages (which may be stale copies when the chain is damaged).
 */
type Payload = { bytes: Buffer; local: number; complete: boolean };

/** A cell's payload: its local bytes, then its overflow pages as far as they can be read. */
function payloadOf(
  page: Buffer,
  cell: { start: number; length: number; usable: number; pageAt: PageAt },
): Payload | undefined {
  const { start, length, usable } = cell;
  const max = usable - 35;
  let local = length;
  if (length > max) {
    const min = Math.floor(((usable - 12) * 32) / 255) - 23;
    const k = min + ((length - min) % (usable - 4));
    local = k <= max ? k : min;
  }
  if (start + local > page.length) return undefined;
  if (local === length) return { bytes: page.subarray(start, start + local), local, complete: true };
  const parts = [page.subarray(start, start + local)];
  let have = local;
  let next = start + local + 4 <= page.length ? page.readUInt32BE(start + local) : 0;
  for (let hops = 0; have < length && next !== 0 && hops < 100_000; hops++) {
    const overflow = cell.pageAt(next);
    if (!overflow) break;
    const take = Math.min(length - have, overflow.length - 4);
    parts.push(overflow.subarray(4, 4 + take));
    have += take;
    next = overflow.readUInt32BE(0);
  }
  return { bytes: Buffer.concat(parts), local, complete: have === length };
}

type Column = { type: number; start: number; end: number };

/** The record's columns (serial type and byte range); the last ones may lie past the bytes held. */
function columnsOf(record: Buffer): Column[] | undefined {
  const [headerSize, n] = varint(record, 0);
  if (!(headerSize >= n && headerSize <= record.length)) return undefined;
  const columns: Column[] = [];
  let at = n;
  let body = headerSize;
  while (at < headerSize && columns.length < 8) {
    const [type, m] = varint(record, at);
    at += m;
    const size =
      type >= 12 ? Math.floor((type - 12) / 2) : (([0, 1, 2, 3, 4, 6, 8, 8, 0, 0, -1, -1] as const)[type] ?? -1);
    if (!(size >= 0)) return undefined;
    columns.push({ type, start: body, end: body + size });
    body += size;
  }
  return columns;
}

const isInt = (c: Column | undefined) => c !== undefined && c.type >= 1 && c.type <= 9 && c.type !== 7;
const isText = (c: Column | undefined) => c !== undefined && c.type >= 13 && c.type % 2 === 1;
const isBlob = (c: Column | undefined) => c !== undefined && c.type >= 12 && c.type % 2 === 0;

function raise(found: Found, key: keyof Found, value: number): void {
  if (Number.isSafeInteger(value) && value > found[key]) found[key] = value;
}

/**
 * Reads the numbers of one row, if it has the shape of a log row: an event `(NULL, type, timestamp, data, checksum)`,
 * a snapshot head `(NULL, created_at, data, checksum)` or a snapshot part `(sequence, part, data, checksum)`.
 */
function scanRecord(rowid: number, payload: Payload, found: Found): void {
  const record = payload.bytes;
  const cols = columnsOf(record);
  if (!cols) return;
  const [c0, c1, c2, c3, c4] = cols;
  let data: Column;
  let checksum: Column;
  if (cols.length === 5 && c0?.type === 0 && c1 && c2 && c3 && c4 && isInt(c1) && isInt(c2) && isText(c4)) {
    if (isBlob(c3)) {
      scanBinaryEvent(rowid, { payload, data: c3, checksum: c4, type: c1 }, found);
      return;
    }
    if (!isText(c3)) return;
    [data, checksum] = [c3, c4];
  } else if (cols.length === 4 && c0 && c1 && c2 && c3 && (c0.type === 0 || isInt(c0)) && isInt(c1) && isText(c2)) {
    if (!isText(c3)) return;
    [data, checksum] = [c2, c3];
  } else {
    return;
  }
  // JSON text: all of it when its checksum holds, else only the bytes stored in the cell itself (a caller's strings
  // are escaped in JSON, so only structural numbers match).
  const end = Math.min(data.end, record.length);
  const text = record.toString("utf8", data.start, end);
  const whole =
    end === data.end &&
    checksum.end <= record.length &&
    checksumMatches(text, record.toString("latin1", checksum.start, checksum.end));
  const searched = whole ? text : record.toString("latin1", data.start, Math.min(end, payload.local));
  for (const m of searched.matchAll(NUMBERS)) {
    const value = Number(m[2]);
    const key =
      m[1] === "sequenceNumber" || m[1] === "lastEventSequence"
        ? "lastSequence"
        : m[1] === "fencingToken" || m[1] === "lastFencingToken"
          ? "lastFencingToken"
          : "lastSequenceId";
    raise(found, key, value);
  }
}

/** The fixed head of an event's binary form (see event-codec.ts), when the row's columns agree with it. */
function scanBinaryEvent(
  rowid: number,
  row: { payload: Payload; data: Column; checksum: Column; type: Column },
  found: Found,
): void {
  const { payload, data, checksum } = row;
  const record = payload.bytes;
  const format = record[data.start];
  if (data.start + 35 > record.length || (format !== 1 && format !== 2)) return; // event formats 1 and 2 share the head
  const t = row.type;
  const type = t.type === 8 ? 0 : t.type === 9 ? 1 : record.readUIntBE(t.start, t.end - t.start);
  const sequence = record.readDoubleLE(data.start + 2);
  if (record[data.start + 1] !== type || sequence !== rowid) return;
  if (payload.complete && checksum.end <= record.length) {
    // Whole: the checksum must hold, so damaged bytes never raise a counter.
    const sum = record.toString("latin1", checksum.start, checksum.end);
    if (!checksumMatches(record.subarray(data.start, data.end), sum)) return;
  } else if (data.start + 35 > payload.local) {
    return; // the head is not in the cell itself and cannot be verified
  }
  raise(found, "lastSequence", sequence);
  raise(found, "lastFencingToken", record.readDoubleLE(data.start + 18));
  raise(found, "lastSequenceId", record.readDoubleLE(data.start + 26));
}
