// The byte-level writer and reader of the binary row format (events and snapshot parts, schema version 4): numbers as
// little-endian float64 (exact for every safe integer and every time), lengths as LEB128 varints, strings as UTF-8.
// The reader checks structure only; every read past the end throws.

import { writeShortText } from "@omnirelay/core/wire";

/** Appends values to a growing buffer. Internal. */
export class ByteWriter {
  private buf: Buffer;
  private at = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Starts a new value, reusing the buffer. */
  reset(): void {
    this.at = 0;
  }

  /** A copy of what was written since {@link reset} (small ones share Node's buffer pool). */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.at));
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  u8(value: number): void {
    this.room(1);
    this.buf[this.at++] = value;
  }

  f64(value: number): void {
    this.room(8);
    this.buf.writeDoubleLE(value, this.at);
    this.at += 8;
  }

  varint(value: number): void {
    this.room(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.at++] = v;
  }

  /** A string: its UTF-8 byte length, then the bytes. */
  str(value: string): void {
    if (value.length <= 42) {
      // At most 126 bytes: a one-byte length, written after the text.
      this.room(1 + value.length * 3);
      const n = writeShortText(this.buf, this.at + 1, value);
      this.buf[this.at] = n;
      this.at += 1 + n;
      return;
    }
    const n = Buffer.byteLength(value, "utf8");
    this.varint(n);
    this.room(n);
    this.at += this.buf.write(value, this.at, "utf8");
  }

  /** Bytes: their length, then the bytes. */
  bytes(value: Uint8Array): void {
    this.varint(value.byteLength);
    this.room(value.byteLength);
    this.buf.set(value, this.at);
    this.at += value.byteLength;
  }

  /**
   * A string → string map: its size, then key and value of each entry. A key of {@link KNOWN_KEYS} is written as
   * its index (varint `2 × index + 1`), any other as a string whose length is written doubled (`2 × bytes`).
   */
  map(value: Readonly<Record<string, string>>): void {
    const keys = Object.keys(value);
    this.varint(keys.length);
    for (const key of keys) {
      const known = KNOWN_INDEX.get(key);
      if (known !== undefined) this.varint(2 * known + 1);
      else {
        const n = Buffer.byteLength(key, "utf8");
        this.varint(2 * n);
        this.room(n);
        this.at += this.buf.write(key, this.at, "utf8");
      }
      this.str(value[key] as string);
    }
  }
}

/**
 * Metadata keys the queue writes on its events, stored as a number: smaller rows, and a decoded map gets the same
 * (internalised) key strings every time instead of a new string per event. Only ever append to this list.
 */
export const KNOWN_KEYS = [
  "queue.pending",
  "queue.active",
  "failure.requeued",
  "drain.count",
  "restore.count",
  "deadletter.reason",
  "deadletter.purge_reason",
  "shard.id",
] as const;
const KNOWN_INDEX = new Map<string, number>(KNOWN_KEYS.map((k, i) => [k, i]));

const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabAt = 0;

// Short strings that repeat from item to item (resource types, partition keys, encodings), decoded once and shared: a
// direct-mapped cache keyed by a hash of the bytes. A restart holds a million items: three strings fewer each is less
// for the garbage collector to copy and mark, and less memory.
const SHARED_SLOTS = 1024;
const SHARED_MAX_BYTES = 32;
const sharedBytes = Buffer.alloc(SHARED_SLOTS * SHARED_MAX_BYTES);
const sharedLength = new Uint8Array(SHARED_SLOTS);
const sharedText: string[] = new Array<string>(SHARED_SLOTS).fill("");

/** Thrown for bytes that do not decode; the caller turns it into a `corrupt` error. Internal. */
export class MalformedError extends Error {}

/** Reads values from one buffer, front to back. Internal. */
export class ByteReader {
  at = 0;
  /**
   * @param viewBodies - {@link ByteReader.bytes} returns views into `buf` instead of copies: only for a buffer of its
   *   own that nothing writes to afterwards, and whose other bytes are few beside the bodies (they stay alive with them).
   */
  constructor(
    readonly buf: Buffer,
    private readonly viewBodies = false,
  ) {}

  u8(): number {
    const v = this.buf[this.at++];
    if (v === undefined) throw new MalformedError("truncated");
    return v;
  }

  f64(): number {
    const v = this.buf.readDoubleLE(this.at); // throws RangeError past the end
    this.at += 8;
    return v;
  }

  /** A safe integer >= `min`. */
  int(min: number): number {
    const v = this.f64();
    if (!Number.isSafeInteger(v) || v < min) throw new MalformedError(`bad integer ${v}`);
    return v;
  }

  /** A time in ms: an integer in the range a log can hold. */
  time(): number {
    const v = this.f64();
    if (!Number.isSafeInteger(v) || v < -8.64e15 || v > 8.64e15) throw new MalformedError(`bad time ${v}`);
    return v;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new MalformedError("varint too long");
    }
  }

  private span(): number {
    const n = this.varint();
    const end = this.at + n;
    if (end > this.buf.length) throw new MalformedError("truncated");
    return end;
  }

  str(): string {
    return this.text(this.span());
  }

  /** UTF-8 text from here to `end` (Buffer's own slice, without `toString`'s argument handling). */
  private text(end: number): string {
    const s = (this.buf as unknown as { utf8Slice(start: number, end: number): string }).utf8Slice(this.at, end);
    this.at = end;
    return s;
  }

  /**
   * A string as {@link str}, the same string object as the last time these bytes were read while it stays cached
   * (for short text that repeats: resource types, partition keys, encodings).
   */
  shared(): string {
    const end = this.span();
    const n = end - this.at;
    if (n === 0 || n > SHARED_MAX_BYTES) return this.text(end);
    const buf = this.buf;
    let h = n;
    for (let i = this.at; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
    const slot = (h ^ (h >>> 15)) & (SHARED_SLOTS - 1);
    const base = slot * SHARED_MAX_BYTES;
    if (sharedLength[slot] === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (sharedBytes[base + i] !== buf[this.at + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.at = end;
        return sharedText[slot] as string;
      }
    }
    buf.copy(sharedBytes, base, this.at, end);
    sharedLength[slot] = n;
    const s = this.text(end);
    sharedText[slot] = s;
    return s;
  }

  /** A string that must not be blank (as the wire's required text); `shared` as {@link shared}. */
  required(shared = false): string {
    const s = shared ? this.shared() : this.str();
    const c = s.charCodeAt(0);
    // Only a string that starts with white space can be blank.
    if (s.length === 0 || ((c <= 32 || c >= 0xa0) && s.trim().length === 0)) throw new MalformedError("blank text");
    return s;
  }

  /**
   * Bytes, copied out of the row into a shared slab (as Node's buffer pool does), so an item keeps neither its row nor
   * an ArrayBuffer of its own alive; or, with `viewBodies`, a view into the reader's buffer. A plain `Uint8Array`, as
   * the wire's decoder returns.
   */
  bytes(): Uint8Array {
    const end = this.span();
    const n = end - this.at;
    let out: Uint8Array;
    if (this.viewBodies) {
      out = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.at, n);
      this.at = end;
      return out;
    }
    if (n > SLAB_BYTES / 4) {
      out = new Uint8Array(n);
    } else {
      if (slabAt + n > SLAB_BYTES) {
        slab = new Uint8Array(SLAB_BYTES);
        slabAt = 0;
      }
      out = new Uint8Array(slab.buffer, slabAt, n);
      slabAt += (n + 7) & ~7;
    }
    this.buf.copy(out, 0, this.at, end);
    this.at = end;
    return out;
  }

  map(): Record<string, string> {
    const n = this.varint();
    const out: Record<string, string> = {};
    for (let i = 0; i < n; i++) {
      const code = this.varint();
      let key: string | undefined;
      if (code % 2 === 1) {
        key = KNOWN_KEYS[(code - 1) / 2];
        if (key === undefined) throw new MalformedError("unknown map key");
      } else {
        const end = this.at + code / 2;
        if (end > this.buf.length) throw new MalformedError("truncated");
        key = this.text(end);
      }
      if (key === "__proto__") throw new MalformedError("a map key named __proto__");
      out[key] = this.str();
    }
    return out;
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.at !== this.buf.length) throw new MalformedError("trailing bytes");
  }
}
