import type { Clock, TimerHandle } from "../util/clock.js";
import { MinHeap } from "../util/heap.js";

interface FakeTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A manual clock for tests: time moves only when `advance` or `set` is called, and due timers fire in
 * deadline order (ties in creation order) as time passes them.
 */
export class FakeClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new MinHeap<FakeTimer>((a, b) => (a.at === b.at ? a.id < b.id : a.at < b.at));

  /** @param start - initial time, ms since the epoch. @defaultValue `Date.UTC(2026, 0, 1)` */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer: FakeTimer = { id: this.nextId++, at: this.current + Math.max(0, delayMs), callback, cancelled: false };
    this.timers.push(timer);
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as unknown as FakeTimer).cancelled = true;
  }

  /** Number of timers that have not fired or been cleared. */
  get pendingTimers(): number {
    let n = 0;
    for (const t of (this.timers as unknown as { items: FakeTimer[] }).items) if (!t.cancelled) n++;
    return n;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    this.set(this.current + ms);
  }

  /** Moves time to `time` (never backwards), firing due timers in order. */
  set(time: number): void {
    if (time < this.current) throw new Error("FakeClock cannot go backwards");
    for (;;) {
      const next = this.timers.peek();
      if (!next || next.at > time) break;
      this.timers.pop();
      if (next.cancelled) continue;
      this.current = next.at;
      next.callback();
    }
    this.current = time;
  }
}
