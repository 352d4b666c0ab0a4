import {
  type CallOptions,
  type Clock,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  type ResourceLeaseEventLog,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotInPieces } from "@omnirelay/core/replication";
import { cancelledError, closedError, faultedError, fromSqliteError } from "./errors.js";
import { isFilePath } from "./files.js";
import { type CommitDone, GroupCommit } from "./group-commit.js";
import { highWaterPath } from "./high-water.js";
import { HighWaterKeeper } from "./high-water-keeper.js";
import { mapErrors } from "./integrity.js";
import { CommittedReader, type Counters, encodePublish, type Pending } from "./log-rows.js";
import { type SnapshotStore, StepPacer, snapshotStoreOver, writeSnapshotInSteps } from "./log-snapshots.js";
import { type LogStart, type LogStore, openLogStore } from "./log-store.js";
import { claimLog, type LogClaim } from "./open-registry.js";
import {
  type ResolvedReplicatorOptions,
  resolveReplicatorOptions,
  type SqliteDurability,
  type SqliteResourceLeaseReplicatorOptions,
} from "./options.js";
import { repairLog, type SqliteLogRepairOptions, type SqliteLogRepairReport } from "./repair.js";
import type { SqliteReplicatorStats } from "./replicator-stats.js";
import { isLogLost } from "./unlink-watch.js";

export type { SqliteReplicatorStats } from "./replicator-stats.js";

/**
 * The embedded durable event log: a {@link ResourceLeaseReplicator} that appends the queue's events to a SQLite file
 * (one connection, WAL, prepared statements, exclusive lock so a second process cannot write the same log) and a
 * {@link ResourceLeaseEventLog} to read them back. Sequence numbers are the queue's: each publish must continue at
 * exactly the last one + 1. A write that fails faults the replicator (every later publish rejects), so a gap is
 * never committed. Each row carries a CRC-32 of its JSON; `open` refuses a corrupt log, naming the sequence number.
 */
export class SqliteResourceLeaseReplicator implements ResourceLeaseReplicator, ResourceLeaseEventLog, AsyncDisposable {
  /** The resolved table name of the events. */
  readonly table: string;
  /** The durability mode. */
  readonly durability: SqliteDurability;
  /** Whether the log's connection (inserts, commits, reads) lives on its own writer thread. */
  readonly writerThread: boolean;
  private readonly store: LogStore;
  private readonly settings: ResolvedReplicatorOptions;
  private readonly logger: Logger;
  private readonly storeSnapshot: SnapshotStore;
  private committed: number;
  private accepted: number;
  private snapshotSequence: number;
  /** Snapshots stored since open, and whether one is being written in steps. */
  private snapshotsStored = 0;
  private snapshotting = false;
  private readonly pacer = new StepPacer();
  private readonly group: GroupCommit;
  private fault: OmniRelayError | undefined;
  /** Set when the log's file is found gone from disk while open: nothing more is committed, and close rejects. */
  private lost: OmniRelayError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private commits = 0;
  private committedEvents = 0;
  private readonly listeners = new Set<(lastSequence: number) => void>();
  /** Highest fencing token and item sequence id committed (or known from the record and snapshot at open). */
  private readonly counters: Counters;
  /** The high-water record beside the log (none for a log that is not a file). */
  private readonly highWater: HighWaterKeeper | undefined;
  /** This thread's claim on the log file (see `claimLog`), released after the connection is closed. */
  private readonly claim: LogClaim;

  private constructor(
    store: LogStore,
    settings: ResolvedReplicatorOptions,
    init: LogStart & { clock: Clock; logger: Logger; claim: LogClaim },
  ) {
    this.store = store;
    this.claim = init.claim;
    this.settings = settings;
    this.table = settings.table;
    this.durability = settings.durability;
    this.writerThread = settings.writerThread;
    this.logger = init.logger;
    this.committed = init.last;
    this.accepted = init.last;
    this.snapshotSequence = init.snapshot;
    this.counters = { ...init.counters };
    this.highWater = isFilePath(settings.path)
      ? new HighWaterKeeper({
          path: settings.path,
          table: settings.table,
          intervalMs: settings.highWaterIntervalMs,
          fsyncLogFirst: settings.durability === "process-safe" || settings.durability === "async",
          recorded: init.recorded,
          current: () => ({ lastSequence: this.committed, ...this.counters }),
          clock: init.clock,
          logger: init.logger,
          onLost: (error) => {
            this.lost = error;
            this.fault ??= error;
          },
        })
      : undefined;
    this.group = new GroupCommit({ settings, clock: init.clock, commit: (txs, done) => this.write(txs, done) });
    this.storeSnapshot = snapshotStoreOver(store.snapshots, init.clock);
  }

  /**
   * Opens (creating or migrating) the log at `options.path` and verifies it: the high-water record beside it, the
   * file's header and size, the WAL (before SQLite reads it), then the rows (see `verifyOnOpen`). Afterwards the
   * record is brought up to date.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; data-loss `resourcelease.sqlite.corrupt`
   *   (metadata `reason`, `file`, `sequence` when known, `path`) for a bad row, a damaged file or WAL, a log that ends
   *   below its high-water record or is missing, or a damaged record — see `ErrorCodes.sqlite.corrupt`; unavailable
   *   `resourcelease.sqlite.locked` when another process holds the file; failed-precondition
   *   `resourcelease.sqlite.schema_too_new`.
   */
  static async open(options: SqliteResourceLeaseReplicatorOptions): Promise<SqliteResourceLeaseReplicator> {
    const settings = resolveReplicatorOptions(options);
    const { path, table } = settings;
    const claim = claimLog(path);
    let opened: Awaited<ReturnType<typeof openLogStore>>;
    try {
      opened = await openLogStore(settings);
    } catch (error) {
      claim.release();
      throw error;
    }
    const { store, start: verified } = opened;
    claim.identify();
    let log: SqliteResourceLeaseReplicator;
    try {
      log = new SqliteResourceLeaseReplicator(store, settings, {
        ...verified,
        clock: options.clock ?? systemClock,
        logger: options.logger ?? silentLogger,
        claim,
      });
    } catch (error) {
      await store.close();
      claim.release();
      throw fromSqliteError(error, path);
    }
    // A new log, or one that is ahead of its record (commits after the last write, or a log from before records):
    // bring the record up to date now, so a file emptied before the first interval passes is caught too.
    if (log.highWater) {
      try {
        log.highWater.writeNow(verified.recorded === undefined);
      } catch (cause) {
        await log.close().catch(() => undefined);
        const file = highWaterPath(path, table);
        throw new OmniRelayError({
          status: "unavailable",
          code: ErrorCodes.sqlite.writeFailed,
          message: `Could not write the log's high-water record '${file}': ${cause instanceof Error ? cause.message : String(cause)}.`,
          metadata: { sequence: "0", path: file },
          cause,
        });
      }
    }
    return log;
  }

  /**
   * Repairs a log that `open` refuses with `resourcelease.sqlite.corrupt`, with the operator's consent to lose what
   * cannot be read: it moves the damaged files aside (`<path>.damaged-<time>`, never deleting them), recovers every
   * event it can verify up to the first bad one (from the newest readable snapshot on), and writes a new log at
   * `path` numbered so that event sequence numbers, fencing tokens and item sequence ids continue ABOVE the
   * high-water record and above anything the damaged file still shows. A damaged record alone is moved aside and
   * rewritten from the log. A healthy log is left as it is (`repaired: false`). Run it while no process has the log open.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` unless `truncateAfterLastGood` is true;
   *   unavailable `resourcelease.sqlite.locked` when a process has the log open; failed-precondition
   *   `resourcelease.replication.replay_mismatch` when the recovered events are not a queue's history (nothing is
   *   moved then).
   */
  static async repair(path: string, options: SqliteLogRepairOptions): Promise<SqliteLogRepairReport> {
    return repairLog(path, options, (o) => SqliteResourceLeaseReplicator.open(o));
  }

  /**
   * Appends `events` (which must continue at exactly the last sequence + 1, in order) and resolves when they are as
   * durable as the mode promises (see {@link SqliteDurability}).
   * @throws OmniRelayError failed-precondition `resourcelease.sqlite.sequence_gap` (a gap or repeat; faults the
   *   replicator); unavailable `resourcelease.sqlite.write_failed` (this or an earlier write failed, or the log's
   *   file was found gone from disk — checked with each high-water write, see `highWaterIntervalMs`),
   *   `resourcelease.sqlite.closed`; cancelled `resourcelease.cancelled` when `signal` is already aborted.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.fault) return Promise.reject(faultedError(this.fault, events[0]?.sequenceNumber));
    if (options.signal?.aborted) return Promise.reject(cancelledError());
    if (events.length === 0) return Promise.resolve();
    const encoded = encodePublish(events, this.accepted);
    if (encoded.gap) {
      this.fault = encoded.gap;
      return Promise.reject(this.fault);
    }
    const { rows, counters } = encoded;
    this.accepted = rows.at(-1)?.sequence ?? this.accepted;
    if (this.settings.durability === "async") {
      this.group.add({ rows, counters, resolve: undefined, reject: undefined });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => this.group.add({ rows, counters, resolve, reject }));
  }

  /**
   * Reads committed events with `sequenceNumber >= fromSequence` in order, at most `limit`, verifying each row.
   * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt` at a bad row; invalid-argument for a bad limit.
   */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: "limit must be an integer >= 0.",
        metadata: { field: "limit" },
      });
    }
    return this.iterate(Math.max(1, Math.floor(fromSequence)), limit ?? Number.POSITIVE_INFINITY);
  }

  private iterate(from: number, limit: number): CommittedReader {
    const source = {
      select: (from: number, limit: number) => this.store.selectPage(from, limit),
      path: this.settings.path,
      committed: () => this.committed,
      closed: () => this.closed,
    };
    return new CommittedReader(source, from, limit);
  }

  /** Sequence number of the last committed event, 0 when the log is empty. */
  async lastSequence(): Promise<number> {
    return this.committed;
  }

  /** The newest stored snapshot, verified, or `undefined`. @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`. */
  latestSnapshot(): ResourceLeaseQueueSnapshot | undefined {
    try {
      return this.store.latestSnapshot();
    } catch (error) {
      throw fromSqliteError(error, this.settings.path);
    }
  }

  /**
   * The newest stored snapshot in pieces, for `ResourceLeaseQueue.rebuild`: its head verified now, its parts read from
   * the log a few at a time and verified (checksum, as the open did already, and decoding) as the pieces reach them,
   * so a large snapshot is never held whole, read or decoded. Read the pieces once, before closing the log.
   * `undefined` when there is none.
   * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`: here for the head, from the pieces for a part
   *   that is missing, does not match its checksum or does not decode.
   */
  latestSnapshotInPieces(): ResourceLeaseSnapshotInPieces | undefined {
    const path = this.settings.path;
    try {
      const snapshot = this.store.latestSnapshotInPieces();
      return snapshot && { head: snapshot.head, pieces: mapErrors(snapshot.pieces, (e) => fromSqliteError(e, path)) };
    } catch (error) {
      throw fromSqliteError(error, path);
    }
  }

  /**
   * Stores a queue snapshot — only when every event it covers is committed and it is newer than the stored one —
   * then prunes old snapshots and (with `retainEventsAfterSnapshot`) old events. Returns whether it was stored.
   */
  saveSnapshot(snapshot: ResourceLeaseQueueSnapshotView): boolean {
    if (this.closed || this.fault) return false;
    const seq = snapshot.lastEventSequence;
    if (seq > this.committed || seq <= this.snapshotSequence) return false;
    this.storeSnapshot.store(snapshot);
    this.snapshotSequence = seq;
    this.snapshotsStored++;
    return true;
  }

  /**
   * Stores a queue snapshot as {@link SqliteResourceLeaseReplicator.saveSnapshot} does, but a few parts per turn of
   * the event loop or commit (each step its own transaction), so a large snapshot does not hold up publishes; it is
   * readable only once its head is written after the last part. Resolves with whether it was stored: false when it is
   * not newer than the stored one, another is being written or was stored meanwhile, or the log closed or faulted.
   */
  async saveSnapshotInSteps(snapshot: ResourceLeaseQueueSnapshotView): Promise<boolean> {
    const seq = snapshot.lastEventSequence;
    if (this.closed || this.fault || this.snapshotting || seq > this.committed || seq <= this.snapshotSequence) {
      return false;
    }
    const stored = this.snapshotsStored;
    this.snapshotting = true;
    try {
      const still = () => !this.closed && !this.fault && this.snapshotsStored === stored;
      if (!(await writeSnapshotInSteps(this.storeSnapshot, snapshot, { still, pause: () => this.pacer.pause() }))) {
        return false;
      }
      this.snapshotSequence = seq;
      this.snapshotsStored++;
      return true;
    } finally {
      this.snapshotting = false;
    }
  }

  /**
   * Calls `listener` after every commit with the last committed sequence number (synchronously, before the
   * publishes of that commit resolve). Exceptions are logged. Returns a function that removes the listener.
   */
  onCommit(listener: (lastSequence: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Counters for monitoring. */
  stats(): SqliteReplicatorStats {
    return {
      durability: this.settings.durability,
      lastCommittedSequence: this.committed,
      lastAcceptedSequence: this.accepted,
      uncommittedEvents: this.accepted - this.committed,
      commits: this.commits,
      committedEvents: this.committedEvents,
      lastSnapshotSequence: this.snapshotSequence,
      faulted: this.fault !== undefined,
      highWaterSequence: this.highWater?.lastWritten.lastSequence ?? 0,
    };
  }

  /**
   * Writes a consistent copy of the log (committed rows and snapshots) to `toPath` with SQLite's online backup API,
   * after committing anything still buffered. The copy opens with {@link SqliteResourceLeaseReplicator.open}.
   * @throws OmniRelayError unavailable `resourcelease.sqlite.closed`.
   */
  async backup(toPath: string): Promise<void> {
    if (this.closed) throw closedError();
    await this.group.drain();
    await this.store.backup(toPath);
  }

  /**
   * Commits anything buffered and resolves once no commit is in flight (what a failed commit rejected stays
   * rejected: this never rejects). Publishes made meanwhile are committed too.
   */
  async flush(): Promise<void> {
    await this.group.drain();
  }

  /**
   * Commits anything buffered, brings the high-water record up to date, then closes the file (and ends the writer
   * thread). Idempotent.
   * @throws OmniRelayError unavailable `resourcelease.sqlite.write_failed`, reason `log_lost`, when the log's file
   *   was found gone from disk while open (its directory deleted, the file unlinked or replaced): events acknowledged
   *   since the last high-water write are in no file a later open can read. The file is closed all the same.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    await this.group.drain();
    this.listeners.clear();
    let lost = this.lost;
    if (this.highWater) {
      // The final record is written while the file's lock is still held: the next process to open the log waits for
      // the lock, so it never writes the record at the same time.
      await this.highWater.stop();
      lost = this.highWater.finish();
    }
    try {
      await this.store.close(); // checkpoints the WAL into the file, then releases the lock
    } finally {
      this.highWater?.release(); // only now: closing a descriptor of the file earlier would drop the lock with it
      this.claim.release();
    }
    if (lost) throw lost;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------- internals

  /** Commits the transactions of publishes; after each, brings the counters up to date and tells the listeners. */
  private write(txs: readonly (readonly Pending[])[], done: CommitDone): void {
    if (this.lost) {
      done(0, this.lost); // buffered publishes of a log gone from disk are refused, not committed to a ghost file
      return;
    }
    const rows = txs.map((tx) => (tx.length === 1 ? (tx[0]?.rows ?? []) : tx.flatMap((p) => p.rows)));
    this.store.commit(rows, (committed, cause, joined) => {
      if (joined && committed > 0) this.commits--; // its first transaction was the previous one's
      for (const tx of txs.slice(0, committed)) this.afterCommit(tx);
      if (committed === txs.length) {
        done(committed);
        return;
      }
      if (isLogLost(cause)) {
        // Committed into a file no later open can see: refused, and the log faulted as the high-water keeper does.
        this.lost = cause;
        this.fault ??= cause;
        this.logger.error({ err: cause }, "The SQLite log is gone from disk; log faulted.");
        done(committed, cause);
        return;
      }
      const failed = rows[committed] ?? [];
      this.fault = new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.sqlite.writeFailed,
        message: `Writing events ${failed[0]?.sequence}..${failed.at(-1)?.sequence} to SQLite failed: ${cause instanceof Error ? cause.message : String(cause)}. Nothing of it was committed; reopen the log and rebuild.`,
        metadata: { sequence: String(failed[0]?.sequence ?? 0) },
        cause,
      });
      this.logger.error({ err: cause, sequence: failed[0]?.sequence }, "SQLite event log write failed; log faulted.");
      done(committed, this.fault);
    });
  }

  private afterCommit(batch: readonly Pending[]): void {
    const last = batch.at(-1)?.rows.at(-1)?.sequence;
    this.committed = last ?? this.committed;
    this.commits++;
    for (const p of batch) {
      this.committedEvents += p.rows.length;
      if (p.counters.lastFencingToken > this.counters.lastFencingToken) {
        this.counters.lastFencingToken = p.counters.lastFencingToken;
      }
      if (p.counters.lastSequenceId > this.counters.lastSequenceId) {
        this.counters.lastSequenceId = p.counters.lastSequenceId;
      }
    }
    if (!this.closed) this.highWater?.afterCommit();
    this.pacer.afterCommit();
    for (const listener of this.listeners) {
      try {
        listener(this.committed);
      } catch (error) {
        this.logger.warn({ err: error }, "An onCommit listener threw; ignoring.");
      }
    }
  }
}
