import type { Clock, TimerHandle } from "@omnirelay/core";
import type { Pending } from "./log-rows.js";
import type { ResolvedReplicatorOptions } from "./options.js";

/** What decides when a {@link GroupCommit} commits, and the commit itself. Internal. */
export interface GroupCommitOptions {
  readonly settings: Pick<ResolvedReplicatorOptions, "durability" | "maxBatchEvents" | "asyncFlushIntervalMs">;
  readonly clock: Clock;
  /** Writes the publishes in one transaction; throws the write failure. */
  readonly commit: (batch: readonly Pending[]) => void;
}

/**
 * Buffers publishes and commits them together: at the end of the event-loop tick (`batched`, `process-safe`),
 * `asyncFlushIntervalMs` later (`async`), or at once when `maxBatchEvents` are waiting. Internal.
 */
export class GroupCommit {
  private buffer: Pending[] = [];
  private buffered = 0;
  private immediate: NodeJS.Immediate | undefined;
  private timer: TimerHandle | undefined;

  constructor(private readonly options: GroupCommitOptions) {}

  /** Buffers a publish; it settles when its commit does. */
  add(pending: Pending): void {
    const { settings, clock } = this.options;
    this.buffer.push(pending);
    this.buffered += pending.rows.length;
    if (this.buffered >= settings.maxBatchEvents) {
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

  /** Commits the buffer in one transaction; never throws (failures reject the buffered publishes). */
  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    if (batch.length === 0) return;
    this.buffer = [];
    this.buffered = 0;
    try {
      this.options.commit(batch);
    } catch (error) {
      for (const p of batch) p.reject?.(error);
      return;
    }
    for (const p of batch) p.resolve?.();
  }
}
