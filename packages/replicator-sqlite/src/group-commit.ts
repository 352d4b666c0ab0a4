import type { Clock, TimerHandle } from "@omnirelay/core";
import type { Pending } from "./log-rows.js";
import type { ResolvedReplicatorOptions } from "./options.js";

/**
 * Reports how many transactions of a commit committed (in order), and the error of the next one; `joined` when the
 * first of them went into the same SQLite transaction as the previous commit's (the writer thread joins them). Internal.
 */
export type CommitDone = (committed: number, error?: unknown, joined?: boolean) => void;

/** What decides when a {@link GroupCommit} commits, and the commit itself. Internal. */
export interface GroupCommitOptions {
  readonly settings: Pick<ResolvedReplicatorOptions, "durability" | "maxBatchEvents" | "asyncFlushIntervalMs">;
  readonly clock: Clock;
  /**
   * Writes the transactions in order and calls `done` — at once (the log on this thread) or later (the writer
   * thread). Never throws.
   */
  readonly commit: (txs: readonly (readonly Pending[])[], done: CommitDone) => void;
}

/**
 * Buffers publishes and commits them together: at the end of the event-loop tick (`batched`, `process-safe`),
 * `asyncFlushIntervalMs` later (`async`), at once for `sync` (each publish its own transaction), or at once when
 * `maxBatchEvents` are waiting. Commits may be in flight together (the writer thread takes them in order, and joins
 * those that queued up during its last commit into one transaction). Internal.
 */
export class GroupCommit {
  private buffer: Pending[] = [];
  private buffered = 0;
  private immediate: NodeJS.Immediate | undefined;
  private timer: TimerHandle | undefined;
  private inflight = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions) {}

  /** Buffers a publish; it settles when its commit does. */
  add(pending: Pending): void {
    const { settings, clock } = this.options;
    this.buffer.push(pending);
    this.buffered += pending.rows.length;
    if (settings.durability === "sync" || this.buffered >= settings.maxBatchEvents) {
      this.flush();
      return;
    }
    if (settings.durability === "batched" || settings.durability === "process-safe") {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.flush();
      });
    } else {
      this.timer ??= clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, settings.asyncFlushIntervalMs);
    }
  }

  /** Starts committing the buffer; never throws. */
  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const txs = this.split(this.buffer);
    this.buffer = [];
    this.buffered = 0;
    this.inflight++;
    this.options.commit(txs, (committed, error) => this.settle(txs, committed, error));
  }

  /** Commits everything buffered and waits until no commit is in flight. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inflight > 0 || this.buffer.length > 0) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
      this.flush();
    }
  }

  private settle(txs: readonly (readonly Pending[])[], committed: number, error: unknown): void {
    this.inflight--;
    for (const [i, tx] of txs.entries()) {
      for (const p of tx) {
        if (i < committed) p.resolve?.();
        else p.reject?.(error);
      }
    }
    if (committed < txs.length) {
      // Nothing after a failed write may be committed (it would leave a gap): reject what waits too.
      const waiting = this.buffer;
      this.buffer = [];
      this.buffered = 0;
      for (const p of waiting) p.reject?.(error);
    }
    if (this.inflight === 0) {
      const idle = this.idle;
      this.idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Transactions: one per publish (`sync`), or publishes together up to `maxBatchEvents` (a publish is never split). */
  private split(batch: readonly Pending[]): Pending[][] {
    const { durability, maxBatchEvents } = this.options.settings;
    if (durability === "sync") return batch.map((p) => [p]);
    const txs: Pending[][] = [];
    let tx: Pending[] = [];
    let events = 0;
    for (const p of batch) {
      tx.push(p);
      events += p.rows.length;
      if (events >= maxBatchEvents) {
        txs.push(tx);
        tx = [];
        events = 0;
      }
    }
    if (tx.length > 0) txs.push(tx);
    return txs;
  }
}
