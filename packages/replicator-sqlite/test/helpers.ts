import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import {
  isOmniRelayError,
  type OmniRelayError,
  type ResourceLeaseItemPayload,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { onTestFinished } from "vitest";
import {
  openDurableResourceLeaseQueue,
  SqliteResourceLeaseReplicator,
  type SqliteResourceLeaseReplicatorOptions,
} from "../src/index.js";

/**
 * A fresh temp directory, removed after the test. (Registered per test: a hook at this module's top level would run
 * only in the first test file of a vitest worker, which shares its modules between files.)
 */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-sqlite-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh database path in a temp directory. */
export function tempDb(name = "log.db"): string {
  return join(tempDir(), name);
}

/** A payload for tests. */
export function item(id: string | number, extra: Partial<ResourceLeaseItemPayload> = {}): ResourceLeaseItemPayload {
  return { resourceType: "table", resourceId: String(id), partitionKey: "p", payloadEncoding: "json", ...extra };
}

/** Awaits something that must throw an OmniRelayError and returns it. */
export async function rejection(run: Promise<unknown> | (() => unknown)): Promise<OmniRelayError> {
  try {
    await (typeof run === "function" ? run() : run);
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    return error;
  }
  throw new Error("expected an OmniRelayError");
}

/** Counters and contents of a queue log written by {@link busyQueueLog}. */
export interface BusyLog {
  readonly lastSequence: number;
  readonly lastFencingToken: number;
  readonly lastSequenceId: number;
  readonly pending: number;
  readonly dead: number;
  readonly active: number;
}

/**
 * Writes a real queue's log at `path`: `items` enqueues, then leases, completions, dead letters and leases left
 * active, so event numbers, fencing tokens and item ids all move. Closes it (the high-water record is then current).
 */
export async function busyQueueLog(
  path: string,
  options: { items?: number; snapshotEveryEvents?: number; replicatorOptions?: Record<string, unknown> } = {},
): Promise<BusyLog> {
  const items = options.items ?? 40;
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: options.snapshotEveryEvents ?? 0,
    queueOptions: { capacity: 1_000_000, maxAttempts: 1, leaseDurationMs: 600_000 },
    ...(options.replicatorOptions ? { replicatorOptions: options.replicatorOptions } : {}),
  });
  const q = durable.queue;
  for (let i = 0; i < items; i += 10) {
    await q.enqueueMany(Array.from({ length: Math.min(10, items - i) }, (_, j) => item(i + j)));
    const grants = await q.lease({ maxItems: 4, peerId: "w" });
    if (grants[0]) await q.complete(grants[0].ownershipToken);
    if (grants[1]) await q.fail(grants[1].ownershipToken, { requeue: false, reason: "poison" });
    // grants[2] and [3] stay active
  }
  const s = q.stats();
  const snapshot = q.snapshot();
  await durable.close();
  return {
    lastSequence: s.lastEventSequence,
    lastFencingToken: s.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    pending: s.pendingCount,
    dead: s.deadLetterCount,
    active: s.activeLeaseCount,
  };
}

/** The page size a SQLite database file's header states (1 means 65536). */
export function pageSizeOf(path: string): number {
  const raw = readFileSync(path).readUInt16BE(16);
  return raw === 1 ? 65536 : raw;
}

/** XORs `count` bytes of `file` from `offset` with 0xa5 (in place). */
export function flipBytes(file: string, offset: number, count: number): void {
  const buf = readFileSync(file);
  if (offset + count > buf.length) throw new Error(`${file} has only ${buf.length} bytes`);
  for (let i = offset; i < offset + count; i++) buf[i] = buf[i]! ^ 0xa5;
  writeFileSync(file, buf);
}

/** Every file beside `path` whose name starts with the log's name, sorted. */
export function filesBeside(path: string): string[] {
  const name = basename(path);
  return readdirSync(dirname(path))
    .filter((f) => f.startsWith(name))
    .sort();
}

/** Where the binary form of event `sequence` starts in a log file's raw bytes (format byte, type, f64 sequence). */
export function binaryRowAt(file: Buffer, sequence: number): number {
  const number = Buffer.alloc(8);
  number.writeDoubleLE(sequence);
  for (let at = file.indexOf(number); at >= 0; at = file.indexOf(number, at + 1)) {
    if (at >= 2 && (file[at - 2] === 1 || file[at - 2] === 2)) return at - 2; // event formats 1 and 2
  }
  return -1;
}

/** A queue snapshot with no items, at `lastEventSequence`: the base of the snapshot codec tests. */
export function emptySnapshot(lastEventSequence: number) {
  return {
    version: 1 as const,
    lastEventSequence,
    lastFencingToken: 1,
    lastSequenceId: 2,
    mode: "running" as const,
    pending: [],
    delayed: [],
    active: [],
    deadLetters: [],
    requestIds: [],
    reusableIds: [],
  };
}

/** Every event of an open log, from the first. */
export async function eventsOf(log: SqliteResourceLeaseReplicator): Promise<ResourceLeaseReplicationEvent[]> {
  const out: ResourceLeaseReplicationEvent[] = [];
  for await (const e of log.read(1)) out.push(e);
  return out;
}

/** Every event of the log at `path`, opened for the read (with `options`) and closed after it. */
export async function eventsAt(
  path: string,
  options: Omit<SqliteResourceLeaseReplicatorOptions, "path"> = {},
): Promise<ResourceLeaseReplicationEvent[]> {
  const log = await SqliteResourceLeaseReplicator.open({ ...options, path });
  try {
    return await eventsOf(log);
  } finally {
    await log.close();
  }
}
