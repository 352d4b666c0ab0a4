/** Refusals remembered for the once-per-token-and-verb rule; the oldest is forgotten first past this. */
const REMEMBERED = 10_000;
/** Audit events for refused calls per second (and burst): past it a refusal is only answered, not logged. */
export const REFUSAL_EVENTS_PER_SECOND = 50;

/**
 * Decides which refused stale calls become `LeaseRefused` events, so that refusals cannot flood the log: each stale
 * token is recorded once per verb (a worker retrying a fenced complete in a loop writes one event, not one per call),
 * and at most {@link REFUSAL_EVENTS_PER_SECOND} a second overall (a caller inventing tokens cannot either). The call is
 * refused either way; only the audit record is skipped. A live-only decision: the events that were written rebuild
 * the same state (they change none). Internal to the queue.
 */
export class RefusalAudit {
  private readonly seen = new Set<string>();
  private tokens = REFUSAL_EVENTS_PER_SECOND;
  private refilledAt = Number.NEGATIVE_INFINITY;
  /** Refusals not recorded (repeats and those past the rate). */
  skipped = 0;

  /** Whether the refusal `key` (token and verb) at `now` is recorded. */
  admit(key: string, now: number): boolean {
    if (this.seen.has(key)) {
      this.skipped++;
      return false;
    }
    const elapsed = Math.max(0, now - this.refilledAt);
    this.tokens = Math.min(REFUSAL_EVENTS_PER_SECOND, this.tokens + (elapsed * REFUSAL_EVENTS_PER_SECOND) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.skipped++;
      return false;
    }
    this.tokens--;
    this.seen.add(key);
    if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}
