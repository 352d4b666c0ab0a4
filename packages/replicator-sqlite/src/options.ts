import type { Clock, Logger } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import { quoteTableName } from "./errors.js";
import { validPageSize } from "./wal.js";

/**
 * When a publish resolves, and so when the dispatcher answers the RPC:
 * - `'sync'`: after the publish's own transaction committed with `synchronous=FULL` (one fsync per publish).
 *   Nothing acknowledged is ever lost; the slowest mode.
 * - `'batched'`: group commit. Every publish of one event-loop tick (up to `maxBatchEvents` events) is written in
 *   ONE transaction with `synchronous=FULL`, and each publish resolves after that commit. Nothing acknowledged is
 *   lost; callers wait at most one tick plus one fsync.
 * - `'process-safe'`: group commit as `'batched'`, each publish resolving after its commit, but with
 *   `synchronous=NORMAL`: the commit is written to the WAL without an fsync (SQLite syncs at checkpoints). Nothing
 *   acknowledged is lost when the process dies (kill -9, a crash, OOM): the operating system still has the write. A
 *   power loss or kernel crash can lose the last commits (the log stays a consistent prefix). The same trade as
 *   Redis's `appendfsync everysec`; 10–30% more throughput than `'batched'` on a machine with fast fsync, far more
 *   on one with slow fsync.
 * - `'async'`: resolves at once; the events are committed `asyncFlushIntervalMs` later (`synchronous=NORMAL`).
 *   Acknowledged events — enqueues, completions — are LOST if the process or machine crashes before that commit,
 *   and a lost completion makes the item run again. The log stays a consistent prefix, so recovery still works.
 */
export type SqliteDurability = "sync" | "batched" | "process-safe" | "async";

/** Options of {@link SqliteResourceLeaseReplicator.open}. */
export interface SqliteResourceLeaseReplicatorOptions {
  /** Path of the SQLite file (created when missing). */
  readonly path: string;
  /**
   * Events table name; snapshots go to `${table}_snapshots` and `${table}_snapshot_parts`. Must match `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
   * @defaultValue 'resourcelease_events'
   */
  readonly table?: string;
  /** See {@link SqliteDurability}. @defaultValue 'batched' */
  readonly durability?: SqliteDurability;
  /** Most events in one group-commit transaction (`'batched'`, `'process-safe'`, `'async'`); a single publish is never split. @defaultValue 1000 */
  readonly maxBatchEvents?: number;
  /** Delay before `'async'` mode commits what it acknowledged. @defaultValue 10 */
  readonly asyncFlushIntervalMs?: number;
  /**
   * What `open` verifies: `'all'` checks every row (checksum, JSON, no gaps); `'tail'` only the rows after the newest
   * snapshot (what a rebuild replays), so open time stays bounded; `'on-read'` only the newest snapshot's head, that
   * its parts are all there and that the log continues from it, leaving the parts to the read that loads the
   * snapshot and the rows to `read`, each of which verifies what it returns (checksum, decoding, no gaps) either way.
   * `'on-read'` suits a caller that replays the tail at once — `openDurableResourceLeaseQueue` uses it by default, so
   * a restart reads and checks each row and each snapshot part once instead of twice.
   * @defaultValue 'all'
   */
  readonly verifyOnOpen?: "all" | "tail" | "on-read";
  /**
   * Compaction: after a snapshot at sequence S is stored, events with sequence <= S - retainEventsAfterSnapshot are
   * deleted (they are in the snapshot). `undefined` keeps every event (no compaction), which downstream readers of
   * the whole history need. @defaultValue undefined (keep all)
   */
  readonly retainEventsAfterSnapshot?: number;
  /** Snapshots kept (the newest ones). @defaultValue 2 */
  readonly retainSnapshots?: number;
  /** How long `open` waits for another process to release the file before failing. @defaultValue 5000 */
  readonly busyTimeoutMs?: number;
  /**
   * How often the high-water record beside the log (`<path>.hwm`) is brought up to date after commits: at most one
   * write (temporary file, fsync, rename, directory fsync) per interval, plus one at open and one at close. `open`
   * refuses a log that ends below its record. 0 writes it after every commit (an extra fsync per group commit).
   * A loss of commits made after the last write is not caught by the record (mid-WAL damage still is); see the guide.
   * @defaultValue 1000
   */
  readonly highWaterIntervalMs?: number;
  /**
   * Runs the log's connection on a `worker_threads` thread of its own: the rows' checksums, the inserts, the commit
   * and its fsync happen there, off the event loop, which hands over each group commit as one message and resolves
   * its publishes when the thread reports the commit. Durability is the same in every mode. Reads and snapshot writes
   * (rare) wait for the thread between two commits. `false` keeps everything on the calling thread.
   * @defaultValue true
   */
  readonly writerThread?: boolean;
  /**
   * SQLite page size of a log file this creates (a power of two from 512 to 65536); an existing file keeps the one it
   * was made with. Larger pages mean fewer, larger writes per group commit and checkpoint: against SQLite's 4 KiB,
   * 16 KiB took ~6 % off the dispatcher's CPU per leased and completed item (docs/performance.md).
   * @defaultValue 16384
   */
  readonly pageSizeBytes?: number;
  /** Source of snapshot timestamps and the high-water timer. @defaultValue systemClock */
  readonly clock?: Clock;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/** Validated options with defaults. Internal. */
export interface ResolvedReplicatorOptions {
  readonly path: string;
  readonly table: string;
  readonly durability: SqliteDurability;
  readonly maxBatchEvents: number;
  readonly asyncFlushIntervalMs: number;
  readonly verifyOnOpen: "all" | "tail" | "on-read";
  readonly retainEventsAfterSnapshot: number | undefined;
  readonly retainSnapshots: number;
  readonly busyTimeoutMs: number;
  readonly highWaterIntervalMs: number;
  readonly writerThread: boolean;
  readonly pageSizeBytes: number;
}

/** The page size of a log file created without `pageSizeBytes`. Internal. */
export const DEFAULT_PAGE_SIZE_BYTES = 16384;

/**
 * Validates replicator options. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
 */
export function resolveReplicatorOptions(o: SqliteResourceLeaseReplicatorOptions): ResolvedReplicatorOptions {
  if (typeof o?.path !== "string" || o.path.trim().length === 0)
    throw OmniRelayError.invalidOption("path", "path is required.");
  const table = o.table ?? "resourcelease_events";
  quoteTableName(table, "table");
  const durability = o.durability ?? "batched";
  if (durability !== "sync" && durability !== "batched" && durability !== "process-safe" && durability !== "async") {
    throw OmniRelayError.invalidOption(
      "durability",
      "durability must be 'sync', 'batched', 'process-safe' or 'async'.",
    );
  }
  const r: ResolvedReplicatorOptions = {
    path: o.path,
    table,
    durability,
    maxBatchEvents: integerOption("maxBatchEvents", o.maxBatchEvents, { min: 1, fallback: 1000 }),
    asyncFlushIntervalMs: integerOption("asyncFlushIntervalMs", o.asyncFlushIntervalMs, { min: 0, fallback: 10 }),
    verifyOnOpen: o.verifyOnOpen ?? "all",
    retainEventsAfterSnapshot:
      o.retainEventsAfterSnapshot === undefined
        ? undefined
        : integerOption("retainEventsAfterSnapshot", o.retainEventsAfterSnapshot, { min: 0 }),
    retainSnapshots: integerOption("retainSnapshots", o.retainSnapshots, { min: 1, fallback: 2 }),
    busyTimeoutMs: integerOption("busyTimeoutMs", o.busyTimeoutMs, { min: 0, fallback: 5000 }),
    highWaterIntervalMs: integerOption("highWaterIntervalMs", o.highWaterIntervalMs, {
      min: 0,
      max: 2_147_483_647,
      fallback: 1000,
    }),
    writerThread: o.writerThread ?? true,
    pageSizeBytes: integerOption("pageSizeBytes", o.pageSizeBytes, {
      min: 512,
      max: 65536,
      fallback: DEFAULT_PAGE_SIZE_BYTES,
    }),
  };
  if (!validPageSize(r.pageSizeBytes)) {
    throw OmniRelayError.invalidOption("pageSizeBytes", "pageSizeBytes must be a power of two from 512 to 65536.");
  }
  if (typeof r.writerThread !== "boolean") {
    throw OmniRelayError.invalidOption("writerThread", "writerThread must be true or false.");
  }
  if (r.verifyOnOpen !== "all" && r.verifyOnOpen !== "tail" && r.verifyOnOpen !== "on-read") {
    throw OmniRelayError.invalidOption("verifyOnOpen", "verifyOnOpen must be 'all', 'tail' or 'on-read'.");
  }
  return r;
}
