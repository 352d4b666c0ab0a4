import type { Logger } from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { RateLimiter } from "./rate-limiters.js";

/** Picks a limiter for one call from its metadata; `undefined` passes the choice to the next step. */
export type RateLimiterSelector<TMeta> = (meta: TMeta) => RateLimiter | undefined;

/** Options of {@link BackpressureAwareRateLimiter}. At least `normalLimiter` or `normalSelector` is required. */
export interface BackpressureAwareRateLimiterOptions<TMeta = unknown> {
  /** Limiter used while backpressure is inactive (after `normalSelector`). @defaultValue `undefined` */
  readonly normalLimiter?: RateLimiter;
  /** Limiter used while backpressure is active (after `backpressureSelector`). @defaultValue `undefined` */
  readonly backpressureLimiter?: RateLimiter;
  /** Per-call choice while backpressure is inactive; tried before `normalLimiter`. @defaultValue `undefined` */
  readonly normalSelector?: RateLimiterSelector<TMeta>;
  /** Per-call choice while backpressure is active; tried before `backpressureLimiter`. @defaultValue `undefined` */
  readonly backpressureSelector?: RateLimiterSelector<TMeta>;
  /** Receives selector failures (a throwing selector counts as `undefined`). @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/**
 * Chooses a rate limiter per call, switching to a stricter set while backpressure is active. Plug
 * {@link selectLimiter} into rate-limiting middleware and toggle it with a `RateLimitingBackpressureListener`.
 */
export class BackpressureAwareRateLimiter<TMeta = unknown> {
  private readonly normalLimiter: RateLimiter | undefined;
  private readonly backpressureLimiter: RateLimiter | undefined;
  private readonly normalSelector: RateLimiterSelector<TMeta> | undefined;
  private readonly backpressureSelector: RateLimiterSelector<TMeta> | undefined;
  private readonly logger: Logger;
  private active = false;

  /**
   * Creates a limiter chooser with backpressure inactive.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option: normalLimiter`)
   * when neither `normalLimiter` nor `normalSelector` is given, or (metadata naming the option) when a given
   * limiter has no `tryAcquire` or a given selector is not a function.
   */
  constructor(options: BackpressureAwareRateLimiterOptions<TMeta>) {
    const { normalLimiter, backpressureLimiter, normalSelector, backpressureSelector } = options ?? {};
    if (normalLimiter === undefined && normalSelector === undefined) {
      throw OmniRelayError.invalidOption("normalLimiter", "A normal limiter or a normal selector is required.");
    }
    this.normalLimiter = checkLimiter("normalLimiter", normalLimiter);
    this.backpressureLimiter = checkLimiter("backpressureLimiter", backpressureLimiter);
    this.normalSelector = checkSelector("normalSelector", normalSelector);
    this.backpressureSelector = checkSelector("backpressureSelector", backpressureSelector);
    this.logger = options.logger ?? silentLogger;
  }

  /** Whether the backpressure limiters are in use. */
  get isBackpressureActive(): boolean {
    return this.active;
  }

  /**
   * Switches between the normal and the backpressure limiters.
   * @returns whether the state changed.
   */
  setBackpressure(active: boolean): boolean {
    const changed = this.active !== active;
    this.active = active;
    return changed;
  }

  /**
   * The limiter for a call. While backpressure is active: `backpressureSelector(meta)`, then `backpressureLimiter`,
   * then the normal path. Otherwise: `normalSelector(meta)`, then `normalLimiter`. `undefined` means no limit applies.
   */
  selectLimiter(meta: TMeta): RateLimiter | undefined {
    if (this.active) {
      const chosen = this.select("backpressureSelector", this.backpressureSelector, meta) ?? this.backpressureLimiter;
      if (chosen !== undefined) return chosen;
    }
    return this.select("normalSelector", this.normalSelector, meta) ?? this.normalLimiter;
  }

  private select(name: string, selector: RateLimiterSelector<TMeta> | undefined, meta: TMeta): RateLimiter | undefined {
    if (selector === undefined) return undefined;
    try {
      return selector(meta) ?? undefined;
    } catch (err) {
      this.logger.error({ err, selector: name }, "A rate limiter selector failed; falling back.");
      return undefined;
    }
  }
}

function checkLimiter(option: string, limiter: RateLimiter | undefined): RateLimiter | undefined {
  if (limiter !== undefined && typeof limiter?.tryAcquire !== "function") {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a RateLimiter (with tryAcquire()).`);
  }
  return limiter;
}

function checkSelector<TMeta>(
  option: string,
  selector: RateLimiterSelector<TMeta> | undefined,
): RateLimiterSelector<TMeta> | undefined {
  if (selector !== undefined && typeof selector !== "function") {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a function.`);
  }
  return selector;
}
