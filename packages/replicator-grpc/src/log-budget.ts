import type { Clock } from "@omnirelay/core";

/**
 * A per-second budget of log lines, so a caller that repeats a refused or conflicting call cannot flood the hub's
 * log (the counters still count every one). Internal.
 */
export class LogBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private dropped = 0;

  constructor(
    private readonly clock: Clock,
    private readonly perSecond = 5,
  ) {}

  /**
   * Whether to write the next line; `suppressed` is how many were dropped since the last written one (add it to the
   * line so the gap is visible).
   */
  take(): { readonly log: boolean; readonly suppressed: number } {
    const now = this.clock.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perSecond) {
      this.dropped++;
      return { log: false, suppressed: 0 };
    }
    this.used++;
    const suppressed = this.dropped;
    this.dropped = 0;
    return { log: true, suppressed };
  }
}
