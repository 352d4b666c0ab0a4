import type { Clock, TimerHandle } from "../util/clock.js";

/**
 * Pauses the worker's lease loop until a slot frees up, close, or a delay, and wakes it. Only the loop pauses, so one
 * waker suffices. Internal.
 */
export class LoopWaker {
  private waker: (() => void) | undefined;
  private scheduled = false;

  constructor(private readonly clock: Clock) {}

  /** Waits for {@link wake}, or for `delayMs`. */
  pause(delayMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        timer = undefined;
        if (this.waker === done) this.waker = undefined;
        resolve();
      };
      this.waker = done;
      if (delayMs !== undefined) timer = this.clock.setTimeout(done, delayMs);
    });
  }

  /** Wakes a paused loop now. */
  wake(): void {
    this.waker?.();
  }

  /**
   * Wakes the loop after this turn of the event loop, so that the slots of every handler settling in this turn are
   * counted in one lease call, not one lease call for the first slot that frees.
   */
  wakeSoon(): void {
    if (this.scheduled || this.waker === undefined) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.waker?.();
    });
  }
}
