import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import os from "node:os";

/** What {@link scanWal} found in a write-ahead log. Internal. */
export interface WalScan {
  /** Whole frames in the file (a partial frame at the end is not counted). */
  readonly frames: number;
  /** Frames SQLite will use: up to the last commit frame of the unbroken valid chain from the start. */
  readonly usedFrames: number;
  /**
   * Set when SQLite would silently drop committed frames: the header or a frame fails its checksum and a LATER commit
   * frame of the same WAL generation (same salts) verifies. A torn tail (frames after the last commit that do not
   * verify, an uncommitted transaction, a partial frame) is normal after a crash and is not damage.
   */
  readonly damage?: {
    readonly reason: "wal_header" | "wal_checksum";
    /** Index (0-based) of the first frame that fails, or -1 for the WAL header. */
    readonly frame: number;
    /** Byte offset of that frame (0 for the header). */
    readonly offset: number;
    /** Index of a later commit frame that verifies: proof that committed frames follow the damage. */
    readonly committedFrame: number;
  };
}

const WAL_HEADER = 32;
const FRAME_HEADER = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const WAL_VERSION = 3007000;

/**
 * SQLite's WAL checksum (https://www.sqlite.org/fileformat2.html#walformat): over 32-bit words in pairs,
 * `s0 += x[i] + s1; s1 += x[i+1] + s0`, words read big-endian when the magic is 0x377f0683, little-endian otherwise.
 */
/** A byte range of a buffer and the byte order of its 32-bit words. */
interface Words {
  readonly buf: Buffer;
  readonly start: number;
  readonly end: number;
  readonly bigEndian: boolean;
}

function checksum({ buf, start, end, bigEndian }: Words, seed: readonly [number, number]): [number, number] {
  let s0 = seed[0];
  let s1 = seed[1];
  if (!bigEndian && os.endianness() === "LE" && (buf.byteOffset + start) % 4 === 0) {
    // The common case (SQLite writes native order; x86 and ARM are little-endian): read words without conversion.
    const words = new Uint32Array(buf.buffer, buf.byteOffset + start, (end - start) >>> 2);
    for (let i = 0; i < words.length; i += 2) {
      s0 = (s0 + words[i]! + s1) >>> 0;
      s1 = (s1 + words[i + 1]! + s0) >>> 0;
    }
    return [s0, s1];
  }
  for (let i = start; i < end; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

/** Whether a WAL header's first word is one of its two magic numbers. Internal. */
export function isWalMagic(word: number): boolean {
  return word === MAGIC_LE || word === MAGIC_BE;
}

/** Whether `size` is a page size SQLite can have: a power of two from 512 to 65536. Internal. */
export function validPageSize(size: number): boolean {
  return size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
}

/**
 * Reads the WAL file at `walPath` (before SQLite opens the database: SQLite's own recovery would stop at the first bad
 * frame, and its next write or checkpoint would overwrite the evidence) and reports whether committed frames follow a
 * frame that fails its checksum. Each frame is checked against the checksum stored in the frame before it (not the
 * running one), so frames after a damaged one can still be verified. Returns `undefined` when there is no WAL or it
 * holds no whole frame. Internal.
 */
export function scanWal(walPath: string): WalScan | undefined {
  let fd: number;
  try {
    fd = openSync(walPath, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    if (size < WAL_HEADER) return undefined;
    const header = Buffer.alloc(WAL_HEADER);
    readSync(fd, header, 0, WAL_HEADER, 0);
    const magic = header.readUInt32BE(0);
    const headerPageSize = header.readUInt32BE(8);
    const headerValid = isWalMagic(magic) && header.readUInt32BE(4) === WAL_VERSION && validPageSize(headerPageSize);
    // A damaged header cannot be trusted for the page size or byte order: try every possibility, SQLite's way first.
    const layouts: Array<{ pageSize: number; bigEndian: boolean }> = [];
    if (headerValid) layouts.push({ pageSize: headerPageSize, bigEndian: magic === MAGIC_BE });
    else {
      for (let p = 512; p <= 65536; p *= 2) {
        layouts.push({ pageSize: p, bigEndian: false }, { pageSize: p, bigEndian: true });
      }
    }
    let best: WalScan | undefined;
    for (const layout of layouts) {
      const scan = scanFrames({ fd, size, header, headerValid, ...layout });
      if (scan.damage || !best) best = scan;
      if (scan.damage || headerValid) break;
    }
    return best;
  } finally {
    closeSync(fd);
  }
}

function scanFrames({
  fd,
  size,
  header,
  headerValid,
  pageSize,
  bigEndian,
}: {
  fd: number;
  size: number;
  header: Buffer;
  headerValid: boolean;
  pageSize: number;
  bigEndian: boolean;
}): WalScan {
  const frameSize = FRAME_HEADER + pageSize;
  const frames = Math.floor((size - WAL_HEADER) / frameSize);
  const stored: [number, number] = [header.readUInt32BE(24), header.readUInt32BE(28)];
  const headerOk =
    headerValid && checksum({ buf: header, start: 0, end: 24, bigEndian }, [0, 0]).every((v, i) => v === stored[i]);
  // The salts of this generation: the header's, or (header damaged) the first frame's, which copies them.
  let salt1 = header.readUInt32BE(16);
  let salt2 = header.readUInt32BE(20);
  let seed: [number, number] = stored;
  let chain = headerOk;
  let usedFrames = 0;
  let firstBad = headerOk ? undefined : -1;
  const chunkFrames = Math.max(1, Math.floor((4 << 20) / frameSize));
  const buf = Buffer.alloc(chunkFrames * frameSize);
  for (let base = 0; base < frames; base += chunkFrames) {
    const count = Math.min(chunkFrames, frames - base);
    readSync(fd, buf, 0, count * frameSize, WAL_HEADER + base * frameSize);
    for (let j = 0; j < count; j++) {
      const i = base + j;
      const at = j * frameSize;
      if (i === 0 && !headerOk) {
        salt1 = buf.readUInt32BE(at + 8);
        salt2 = buf.readUInt32BE(at + 12);
      }
      const frameStored: [number, number] = [buf.readUInt32BE(at + 16), buf.readUInt32BE(at + 20)];
      const saltsMatch = buf.readUInt32BE(at + 8) === salt1 && buf.readUInt32BE(at + 12) === salt2;
      let ok = saltsMatch && buf.readUInt32BE(at) !== 0;
      if (ok) {
        const partial = checksum({ buf, start: at, end: at + 8, bigEndian }, seed);
        const sum = checksum({ buf, start: at + FRAME_HEADER, end: at + frameSize, bigEndian }, partial);
        ok = sum[0] === frameStored[0] && sum[1] === frameStored[1];
      }
      const commit = ok && buf.readUInt32BE(at + 4) !== 0;
      if (!ok) {
        chain = false;
        firstBad ??= i;
      } else if (commit) {
        if (chain) usedFrames = i + 1;
        else if (firstBad !== undefined) {
          return {
            frames,
            usedFrames,
            damage: {
              reason: firstBad === -1 ? "wal_header" : "wal_checksum",
              frame: firstBad,
              offset: firstBad === -1 ? 0 : WAL_HEADER + firstBad * frameSize,
              committedFrame: i,
            },
          };
        }
      }
      seed = frameStored;
    }
  }
  return { frames, usedFrames };
}
