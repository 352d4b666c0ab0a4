import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { Clock, Logger, OmniRelayError, TimerHandle } from "@omnirelay/core";
import {
  fsyncFile,
  fsyncFileSync,
  HeldFile,
  type HighWater,
  maxHighWater,
  NO_HIGH_WATER,
  writeHighWater,
  writeHighWaterSync,
} from "./high-water.js";
import { logLostError } from "./open-errors.js";

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
  /**
   * Called once when a write (or the check after it) finds the log gone from disk: its directory deleted, or the
   * database file unlinked or replaced. The keeper writes nothing more.
   */
  readonly onLost: (error: OmniRelayError) => void;
}

/** Which file a path named at open (device and inode), to tell whether it still names it. */
interface FileId {
  readonly dev: number;
  readonly ino: number;
}

/**
 * Keeps a log's high-water record up to date: at most one asynchronous write per interval after commits (never
 * overlapping), and synchronous writes at open and close. It never claims more than is on disk: the target is taken
 * before the log's files are fsynced (when commits skip the fsync) and before the record is written.
 *
 * It also notices a log that is gone from disk while open (SQLite goes on committing to an unlinked file, which no
 * later open can see): a write that fails with ENOENT (the directory is gone), or a path that no longer names the file
 * opened (one `stat` after each write, so the cost is per interval, never per publish), reports it to `onLost`.
 * Internal.
 */
export class HighWaterKeeper {
  private written: HighWater;
  private queued: HighWater;
  private timer: TimerHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** A write is queued that has not started yet. */
  private waiting = false;
  /** The log file as opened (undefined when it could not be told, which turns the check off). */
  private readonly opened: FileId | undefined;
  private lost: OmniRelayError | undefined;
  /** The database file, fsynced through one descriptor kept open (see {@link HeldFile}). */
  private readonly file: HeldFile;

  constructor(private readonly options: HighWaterKeeperOptions) {
    this.file = new HeldFile(options.path);
    this.written = options.recorded ?? NO_HIGH_WATER;
    this.queued = this.written;
    this.opened = fileId(() => statSync(options.path)) ?? undefined;
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
      fsyncFileSync(`${path}-wal`); // no lock of SQLite's is on the WAL file (exclusive mode keeps no shared memory)
      this.file.fsyncSync();
    }
    writeHighWaterSync({ path, table, highWater: target, now: clock.now() });
    this.written = target;
    this.queued = target;
  }

  /**
   * The final write, at close (after {@link stop}, while the log's lock is still held, so it never races the next
   * owner's writes): brings the record up to date and checks the log file is still there. Returns the error of a log
   * found gone (now or earlier); any other write failure is logged (the record is only behind, which open accepts).
   */
  finish(): OmniRelayError | undefined {
    if (this.lost) return this.lost;
    try {
      this.writeNow();
    } catch (error) {
      if (isGone(error)) return this.fail(error);
      this.options.logger.error({ err: error }, "Could not write the SQLite log's high-water record at close.");
    }
    const now = fileId(() => statSync(this.options.path));
    return this.replaced(now) ? this.fail(undefined, now) : undefined;
  }

  /** Closes the database file's descriptor: call after the database connection is closed (see {@link HeldFile}). */
  release(): void {
    this.file.close();
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
      if (this.lost) return;
      const target = this.target();
      this.queued = target;
      try {
        if (fsyncLogFirst) {
          // Everything up to `target` was written before this point; fsync makes it durable wherever it now is
          // (the WAL, or the file after a checkpoint).
          await fsyncFile(`${path}-wal`);
          await this.file.fsync();
        }
        await writeHighWater({ path, table, highWater: target, now: clock.now() });
        if (target.lastSequence >= this.written.lastSequence) this.written = target;
        const now = await fileIdAsync(path);
        if (this.replaced(now)) this.fail(undefined, now);
      } catch (error) {
        this.queued = this.written;
        if (isGone(error)) {
          this.fail(error);
          return;
        }
        logger.error({ err: error }, "Could not write the SQLite log's high-water record; will retry.");
      }
    });
  }

  /** Whether the path no longer names the file opened (`null`: nothing there). */
  private replaced(now: FileId | null | undefined): boolean {
    if (!this.opened || now === undefined) return false;
    return now === null || now.dev !== this.opened.dev || now.ino !== this.opened.ino;
  }

  /** Records the log as lost (once), stops writing, and reports it. */
  private fail(cause: unknown, now?: FileId | null): OmniRelayError {
    if (this.lost) return this.lost;
    const { path, logger, onLost } = this.options;
    const detail =
      cause !== undefined
        ? `writing its high-water record failed with ${(cause as { code?: string }).code} (its directory was deleted or replaced)`
        : now === null
          ? "the file was deleted"
          : "the path now names another file (the file was replaced)";
    this.lost = logLostError(path, detail, cause);
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    logger.error({ err: this.lost }, "The SQLite log is gone from disk; log faulted.");
    onLost(this.lost);
    return this.lost;
  }
}

/** ENOENT or ENOTDIR: the directory of the log (or a file in it) is gone. */
function isGone(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** The file's id; `null` when nothing is there, `undefined` when it could not be told (another error). */
function fileId(statOf: () => { dev: number; ino: number }): FileId | null | undefined {
  try {
    const s = statOf();
    return { dev: s.dev, ino: s.ino };
  } catch (error) {
    return isGone(error) ? null : undefined;
  }
}

async function fileIdAsync(path: string): Promise<FileId | null | undefined> {
  try {
    const s = await stat(path);
    return { dev: s.dev, ino: s.ino };
  } catch (error) {
    return isGone(error) ? null : undefined;
  }
}

function same(a: HighWater, b: HighWater): boolean {
  return (
    a.lastSequence === b.lastSequence &&
    a.lastFencingToken === b.lastFencingToken &&
    a.lastSequenceId === b.lastSequenceId
  );
}
