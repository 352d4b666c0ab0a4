/** Opaque handle of a timer created by a {@link Clock}. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

/**
 * Time source and timers. Inject one into the engine so tests control time (`FakeClock` in
 * `@omnirelay/core/testing`).
 */
export interface Clock {
  /** Current time, ms since the Unix epoch. */
  now(): number;
  /** Calls `callback` once after `delayMs`. */
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Node runs a timer longer than this (about 24.8 days) after 1 ms instead; longer delays are cut to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock: `Date.now()` and Node timers. A delay beyond ~24.8 days fires early, at that bound (callers re-arm). Timers keep the process alive like any Node timer (a waiting
 * `lease` call must not let the process exit under its caller), so close what you create.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    return setTimeout(callback, Math.min(MAX_TIMER_MS, Math.max(0, delayMs))) as unknown as TimerHandle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};
