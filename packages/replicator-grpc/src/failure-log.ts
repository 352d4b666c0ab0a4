import type { Clock, Logger, TimerHandle } from "@omnirelay/core";

/** Failed-open lines written one by one per window; the rest of the window is summed up in one line. */
const LINES_PER_WINDOW = 10;
/** Length of a window. */
const WINDOW_MS = 60_000;
/** Source keys named in a summary line, so an operator sees what kind of ids were refused. */
const SUMMARY_EXAMPLES = 5;

/**
 * Rate limit of the hub's "cannot open a source's log" lines. Every source id a caller names may be refused (a store
 * at its source cap refuses each new id), so one line per id let a caller write megabytes of log with made-up ids.
 * The first {@link LINES_PER_WINDOW} lines of each minute are written as they come; the others are counted and, when
 * the window ends, reported in one summary line (with a few of their keys), so a flood costs a bounded number of
 * lines and none goes unmentioned. Internal.
 */
export class FailureLog {
  private windowStart = Number.NEGATIVE_INFINITY;
  private written = 0;
  private suppressed = 0;
  private examples: string[] = [];
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /**
   * Writes `fields` at error level with `message`, unless this window's lines are used up (then counted for the
   * summary). `always` bypasses the limit: a log the store listed (a damaged file) is bounded by the store's files.
   */
  error(fields: { readonly source: string } & Record<string, unknown>, message: string, always = false): void {
    const now = this.clock.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.close();
      this.windowStart = now;
      this.written = 0;
    }
    if (always || this.written < LINES_PER_WINDOW) {
      if (!always) this.written++;
      this.logger.error(fields, message);
      return;
    }
    this.suppressed++;
    if (this.examples.length < SUMMARY_EXAMPLES) this.examples.push(fields.source);
    // The summary goes out at the end of the window even if no other source fails afterwards.
    this.timer ??= this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(0, this.windowStart + WINDOW_MS - now),
    );
  }

  /** Writes the pending summary now and stops its timer (the hub is closing). */
  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.suppressed === 0) return;
    this.logger.error(
      { suppressed: this.suppressed, examples: this.examples, windowMs: WINDOW_MS },
      "replication hub could not open the logs of more sources than it logs one by one: see its failed sources",
    );
    this.suppressed = 0;
    this.examples = [];
  }
}
