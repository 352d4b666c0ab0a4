import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { promisify } from "node:util";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { damagedError } from "./errors.js";
import { checksumOf } from "./integrity.js";
import { highWaterUnreadableError } from "./open-errors.js";

/**
 * The highest numbers a log has ever committed, as written to its high-water record. Fencing tokens and item sequence
 * ids are the queue's; a log reports the highest it has seen in its events. Internal.
 */
export interface HighWater {
  /** Last committed event sequence number. */
  readonly lastSequence: number;
  /** Highest fencing token of any committed event. */
  readonly lastFencingToken: number;
  /** Highest item sequence id of any committed event. */
  readonly lastSequenceId: number;
}

/** The zero record. Internal. */
export const NO_HIGH_WATER: HighWater = { lastSequence: 0, lastFencingToken: 0, lastSequenceId: 0 };

const FORMAT = "omnirelay.sqlite.high-water";
const DEFAULT_TABLE = "resourcelease_events";

/** Path of the high-water record of the log `table` in the file `path`: `<path>.hwm` (`<path>.<table>.hwm`). Internal. */
export function highWaterPath(path: string, table: string): string {
  return table === DEFAULT_TABLE ? `${path}.hwm` : `${path}.${table}.hwm`;
}

/** The larger of two records, field by field. Internal. */
export function maxHighWater(a: HighWater, b: HighWater): HighWater {
  return {
    lastSequence: Math.max(a.lastSequence, b.lastSequence),
    lastFencingToken: Math.max(a.lastFencingToken, b.lastFencingToken),
    lastSequenceId: Math.max(a.lastSequenceId, b.lastSequenceId),
  };
}

/** Raises `into` (in place) to the fencing tokens and item sequence ids an event carries. Internal. */
export function raiseCounters(
  into: { lastFencingToken: number; lastSequenceId: number },
  event: ResourceLeaseReplicationEvent,
): void {
  const own = event.ownership;
  if (own) {
    if (own.fencingToken > into.lastFencingToken) into.lastFencingToken = own.fencingToken;
    if (own.sequenceId > into.lastSequenceId) into.lastSequenceId = own.sequenceId;
  }
  const item = event.item;
  if (item && item.sequenceId > into.lastSequenceId) into.lastSequenceId = item.sequenceId;
  if (event.items) {
    for (const i of event.items) if (i.sequenceId > into.lastSequenceId) into.lastSequenceId = i.sequenceId;
  }
}

/** The record's text: one JSON line and a line with its CRC-32, so an operator can read it. Internal. */
export function encodeHighWater(table: string, hw: HighWater, writtenAt: number): string {
  const body = JSON.stringify({
    format: FORMAT,
    version: 1,
    table,
    lastSequence: hw.lastSequence,
    lastFencingToken: hw.lastFencingToken,
    lastSequenceId: hw.lastSequenceId,
    writtenAt: new Date(writtenAt).toISOString(),
  });
  return `${body}\ncrc32 ${checksumOf(body)}\n`;
}

/**
 * Reads the high-water record beside the log, `undefined` when there is none.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`, reason `high_water_damaged`, when it fails its
 *   checksum, does not parse, or names another table; unavailable `resourcelease.sqlite.write_failed`, reason
 *   `high_water_unreadable`, when it exists but cannot be read. Internal.
 */
export function readHighWater(path: string, table: string): HighWater | undefined {
  const file = highWaterPath(path, table);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw highWaterUnreadableError(error, file);
  }
  const damaged = (detail: string) =>
    damagedError({ path: file, file: "high_water", reason: "high_water_damaged", detail });
  const lines = text.split("\n");
  const body = lines[0] ?? "";
  if (lines.length !== 3 || lines[2] !== "" || lines[1] !== `crc32 ${checksumOf(body)}`) {
    throw damaged("the record fails its checksum (or is cut short).");
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw damaged("the record does not parse.");
  }
  const count = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (
    parsed?.format !== FORMAT ||
    parsed.version !== 1 ||
    !count(parsed.lastSequence) ||
    !count(parsed.lastFencingToken) ||
    !count(parsed.lastSequenceId)
  ) {
    throw damaged("the record is not a version 1 high-water record.");
  }
  if (parsed.table !== table) throw damaged(`the record is for table '${String(parsed.table)}', not '${table}'.`);
  return {
    lastSequence: parsed.lastSequence as number,
    lastFencingToken: parsed.lastFencingToken as number,
    lastSequenceId: parsed.lastSequenceId as number,
  };
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory (Windows); the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Makes everything written to `file` so far durable (no-op when it does not exist). Internal. */
export function fsyncFileSync(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A descriptor of an open log's database file, opened at its first fsync and kept until {@link HeldFile.close}, which
 * must come after the database connection is closed. POSIX drops every lock a process holds on a file when the process
 * closes any descriptor of that file: opening and closing one per fsync ({@link fsyncFileSync}) dropped the log's
 * exclusive lock at the first high-water write of a 'process-safe' or 'async' log, and a second process could then
 * open the same log and write it too. Internal.
 */
export class HeldFile {
  private fd: number | undefined;
  private closed = false;

  constructor(private readonly path: string) {}

  /** fsyncs the file (nothing when it cannot be opened, as {@link fsyncFileSync}). */
  fsyncSync(): void {
    const fd = this.descriptor();
    if (fd !== undefined) fsyncSync(fd);
  }

  /** {@link HeldFile.fsyncSync} without blocking the event loop. */
  async fsync(): Promise<void> {
    const fd = this.descriptor();
    if (fd !== undefined) await fsyncAsync(fd);
  }

  /** Closes the descriptor: only once the database connection is closed (see above). */
  close(): void {
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private descriptor(): number | undefined {
    if (this.closed) return undefined;
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, "r");
      } catch {
        return undefined;
      }
    }
    return this.fd;
  }
}

const fsyncAsync = promisify(fsync);

/** {@link fsyncFileSync} without blocking the event loop. Internal. */
export async function fsyncFile(file: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch {
    return;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** What {@link writeHighWaterSync} writes: the record of log `table` in `path`, stamped `now`. Internal. */
export interface HighWaterWrite {
  readonly path: string;
  readonly table: string;
  readonly highWater: HighWater;
  readonly now: number;
}

/**
 * Writes the record atomically and durably: a temporary file, fsync, rename over the old record, fsync of the
 * directory. A crash leaves the old record or the new one, never a mix. Internal.
 */
export function writeHighWaterSync({ path, table, highWater: hw, now }: HighWaterWrite): void {
  const file = highWaterPath(path, table);
  const tmp = tempName(file);
  try {
    const fd = openSync(tmp, "wx");
    try {
      writeSync(fd, encodeHighWater(table, hw, now));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (error) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Nothing was created, or it cannot be removed either; the original error is the one to report.
    }
    throw error;
  }
  fsyncDirSync(dirname(file));
}

/**
 * A temporary file name beside `file` that no other writer uses (`<file>.<pid>.<random>.tmp`): the process closing a
 * log and the one opening it next, or two threads, never write or rename one another's file. Internal.
 */
export function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
}

/** {@link writeHighWaterSync} without blocking the event loop. Internal. */
export async function writeHighWater({ path, table, highWater: hw, now }: HighWaterWrite): Promise<void> {
  const file = highWaterPath(path, table);
  const tmp = tempName(file);
  try {
    const handle = await open(tmp, "wx");
    try {
      await handle.writeFile(encodeHighWater(table, hw, now));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
  let dir: Awaited<ReturnType<typeof open>> | undefined;
  try {
    dir = await open(dirname(file), "r");
    await dir.sync();
  } catch {
    // See fsyncDirSync.
  } finally {
    await dir?.close();
  }
}

/** Whether a high-water record exists beside the log. Internal. */
export function hasHighWater(path: string, table: string): boolean {
  return existsSync(highWaterPath(path, table));
}

/** The record's file name, for messages. Internal. */
export function highWaterName(path: string, table: string): string {
  return basename(highWaterPath(path, table));
}
