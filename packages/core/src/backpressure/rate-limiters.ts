import { type Clock, systemClock } from "../util/clock.js";
import { integerOption, numberOption } from "../wire/options.js";

/** A permit granted by a {@link RateLimiter}. */
export interface RateLimitPermit {
  /** Gives the permit back. Calling it more than once has no further effect. */
  release(): void;
}

/** Decides, without waiting, whether one more unit of work may proceed now. */
export interface RateLimiter {
  /** Takes one permit; `undefined` when the limit is reached (the caller should refuse the work). */
  tryAcquire(): RateLimitPermit | undefined;
}

/** Options of {@link ConcurrencyLimiter}. */
export interface ConcurrencyLimiterOptions {
  /** How many permits may be held at once. An integer >= 0 (0 refuses everything); required. */
  readonly permits: number;
}

/** Limits how many units of work run at the same time; a permit is held until released. */
export class ConcurrencyLimiter implements RateLimiter {
  /** Total number of permits. */
  readonly permits: number;
  private held = 0;

  /**
   * Creates a limiter with every permit available.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option: permits`) when
   * `permits` is not an integer >= 0.
   */
  constructor(options: ConcurrencyLimiterOptions) {
    this.permits = integerOption("permits", options?.permits, { min: 0 });
  }

  /** Number of permits that can be acquired right now. */
  get available(): number {
    return this.permits - this.held;
  }

  /** Takes one permit; `undefined` when all permits are held. */
  tryAcquire(): RateLimitPermit | undefined {
    if (this.held >= this.permits) return undefined;
    this.held++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held--;
      },
    };
  }
}

/** Options of {@link TokenBucketLimiter}. */
export interface TokenBucketLimiterOptions {
  /** Tokens added per second. A finite number > 0; required. */
  readonly tokensPerSecond: number;
  /** Bucket size: the most permits granted in a burst. An integer >= 1; required. */
  readonly burst: number;
  /** Time source used to compute the refill. @defaultValue `systemClock` */
  readonly clock?: Clock;
}

const noopPermit: RateLimitPermit = { release() {} };

/**
 * Limits the rate of work: a bucket of `burst` tokens refilled continuously at `tokensPerSecond`; each permit
 * consumes one token. The refill is computed from the clock on each call, so the limiter holds no timer.
 */
export class TokenBucketLimiter implements RateLimiter {
  /** Tokens added per second. */
  readonly tokensPerSecond: number;
  /** Bucket size. */
  readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private refilledAt: number;

  /**
   * Creates a full bucket.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option`) when
   * `tokensPerSecond` is not > 0 or `burst` is not an integer >= 1.
   */
  constructor(options: TokenBucketLimiterOptions) {
    this.tokensPerSecond = numberOption("tokensPerSecond", options?.tokensPerSecond, { min: 0, aboveMin: true });
    this.burst = integerOption("burst", options?.burst, { min: 1 });
    this.clock = options.clock ?? systemClock;
    this.tokens = this.burst;
    this.refilledAt = this.clock.now();
  }

  /** Whole tokens available right now. */
  get availableTokens(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  /** Consumes one token; `undefined` when fewer than one token is left. Releasing the permit does nothing. */
  tryAcquire(): RateLimitPermit | undefined {
    this.refill();
    if (this.tokens < 1) return undefined;
    this.tokens -= 1;
    return noopPermit;
  }

  private refill(): void {
    const now = this.clock.now();
    // A clock that steps backwards adds nothing until it passes the last refill again.
    if (now <= this.refilledAt) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.tokensPerSecond) / 1000);
    this.refilledAt = now;
  }
}
