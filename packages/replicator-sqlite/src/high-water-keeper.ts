import type { Clock, Logger, TimerHandle } from "@omnirelay/core";
import {
  fsyncFile,
  fsyncFileSync,
  type HighWater,
  maxHighWater,
  NO_HIGH_WATER,
  writeHighWater,
  writeHighWaterSync,
} from "./high-water.js";

/** Options of a {@link HighWaterKeeper}. Internal. */
export interface HighWaterKeeperOptions {
  readonly path: string;
  readonly table: string;
  /** At most one write per interval after commits; 0 writes after every commit. */
  readonly intervalMs: number;
  /** True when commits are not fsynced ('process-safe', 'async'): the log's files are fsynced before each write. */
  readonly fsyncLogFirst: boolean;
  /** The record found at open, if any. */
  readonly recorded: HighWater | undefined;
  /** What the record should say now (everything committed). */
  readonly current: () => HighWater;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Keeps a log's high-water record up to date: at most one asynchronous write per interval after commits (never
 * overlapping), and synchronous writes at open and close. It never claims more than is on disk: the target is taken
 * before the log's files are fsynced (when commits skip the fsync) and before the record is written. Internal.
 */
export class HighWaterKeeper {
  private written: HighWater;
  private queued: HighWater;
  private timer: TimerHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** A write is queued that has not started yet. */
  private waiting = false;

  constructor(private readonly options: HighWaterKeeperOptions) {
    this.written = options.recorded ?? NO_HIGH_WATER;
    this.queued = this.written;
  }

  /** The record as last written. */
  get lastWritten(): HighWater {
    return this.written;
  }

  /** After a commit: write within the interval (at once when it is 0). */
  afterCommit(): void {
    if (this.stopped) return;
    if (this.options.intervalMs === 0) {
      this.queueWrite();
      return;
    }
    this.timer ??= this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.queueWrite();
    }, this.options.intervalMs);
  }

  /** Writes the record now when it is behind (or `force`). @throws the file-system error. */
  writeNow(force = false): void {
    const target = this.target();
    if (!force && same(target, this.written)) return;
    const { path, table, clock } = this.options;
    if (this.options.fsyncLogFirst) {
      fsyncFileSync(`${path}-wal`);
      fsyncFileSync(path);
    }
    writeHighWaterSync({ path, table, highWater: target, now: clock.now() });
    this.written = target;
    this.queued = target;
  }

  /** Stops the timer and waits for the write in flight (call before the final {@link writeNow}). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  private target(): HighWater {
    return maxHighWater(this.written, this.options.current());
  }

  /**
   * One asynchronous write after the ones in flight; never throws (a failure is logged and retried later). A write
   * that has not started yet takes the newest target when it starts, so commits faster than the record's fsyncs are
   * covered by one write instead of a growing queue of them.
   */
  private queueWrite(): void {
    if (this.waiting || same(this.target(), this.queued)) return;
    this.waiting = true;
    const { path, table, clock, logger, fsyncLogFirst } = this.options;
    this.chain = this.chain.then(async () => {
      this.waiting = false;
      const target = this.target();
      this.queued = target;
      try {
        if (fsyncLogFirst) {
          // Everything up to `target` was written before this point; fsync makes it durable wherever it now is
          // (the WAL, or the file after a checkpoint).
          await fsyncFile(`${path}-wal`);
          await fsyncFile(path);
        }
        await writeHighWater({ path, table, highWater: target, now: clock.now() });
        if (target.lastSequence >= this.written.lastSequence) this.written = target;
      } catch (error) {
        this.queued = this.written;
        logger.error({ err: error }, "Could not write the SQLite log's high-water record; will retry.");
      }
    });
  }
}

function same(a: HighWater, b: HighWater): boolean {
  return (
    a.lastSequence === b.lastSequence &&
    a.lastFencingToken === b.lastFencingToken &&
    a.lastSequenceId === b.lastSequenceId
  );
}
