import { ConcurrencyLimiter, type RateLimiter, TokenBucketLimiter } from "../backpressure/rate-limiters.js";
import { type Logger, silentLogger } from "../contracts/health.js";
import type {
  RequestMeta,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "../dispatcher/types.js";
import { omniError } from "../errors/omnirelay-error.js";
import { MiddlewareErrorCodes } from "./codes.js";
import { invalidOption, optionalFunction, optionalPositive } from "./options.js";

/** Picks the limiter of one call; `undefined` falls back to the middleware's `limiter`. */
export type RequestLimiterSelector = (meta: RequestMeta) => RateLimiter | undefined;

/** Anything with a `selectLimiter(meta)` method, such as `BackpressureAwareRateLimiter<RequestMeta>`. */
export interface RequestLimiterSource {
  selectLimiter(meta: RequestMeta): RateLimiter | undefined;
}

/** Options of {@link RateLimitingMiddleware}. */
export interface RateLimitingMiddlewareOptions {
  /** Shared limiter for every call that is not a long poll. @defaultValue a `ConcurrencyLimiter` of 1024 permits when no `selector` is given, else none */
  readonly limiter?: RateLimiter;
  /** Per-call choice, tried before `limiter`; pass a `BackpressureAwareRateLimiter` so backpressure throttles inbound calls. @defaultValue `undefined` */
  readonly selector?: RequestLimiterSelector | RequestLimiterSource;
  /** Limiter for long polls, kept apart so waiting leases never starve `complete` and `heartbeat`. @defaultValue a `ConcurrencyLimiter` of 256 permits */
  readonly longPollLimiter?: RateLimiter;
  /** Decides whether a call is a long poll. @defaultValue {@link isLeaseLongPoll} */
  readonly isLongPoll?: (request: UnaryRequest) => boolean;
  /** Retry hint put on refusals. @defaultValue for a `TokenBucketLimiter` the time to refill one token, else `1000` */
  readonly retryAfterMs?: number;
  /** Receives selector and long-poll predicate failures. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Whether a call is a waiting lease: its procedure is `{namespace}::lease` (any case) and its JSON body has a
 * `waitMs` (any case) greater than 0. A body that is not a JSON object is not a long poll.
 */
export function isLeaseLongPoll(request: UnaryRequest): boolean {
  if (!request.meta.procedure.trim().toLowerCase().endsWith("::lease")) return false;
  if (request.body.length === 0) return false;
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(request.body));
  } catch {
    return false;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return false;
  for (const [key, value] of Object.entries(body)) {
    if (key.toLowerCase() === "waitms") return typeof value === "number" && value > 0;
  }
  return false;
}

/**
 * Takes one permit per call and gives it back when the call settles; a refused permit fails the call with
 * `resource-exhausted`. Long polls draw from their own limiter so they cannot hold every shared permit.
 */
export class RateLimitingMiddleware implements UnaryInboundMiddleware {
  private readonly limiter: RateLimiter | undefined;
  private readonly selector: RequestLimiterSelector | undefined;
  private readonly longPollLimiter: RateLimiter;
  private readonly isLongPoll: (request: UnaryRequest) => boolean;
  private readonly retryAfterMs: number | undefined;
  private readonly logger: Logger;

  /**
   * Creates the middleware.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a limiter without
   * `tryAcquire`, a selector that is neither a function nor has `selectLimiter`, or a bad `retryAfterMs`.
   */
  constructor(options: RateLimitingMiddlewareOptions = {}) {
    this.selector = toSelector(options.selector);
    this.limiter =
      checkLimiter("limiter", options.limiter) ??
      (this.selector === undefined ? new ConcurrencyLimiter({ permits: 1024 }) : undefined);
    this.longPollLimiter =
      checkLimiter("longPollLimiter", options.longPollLimiter) ?? new ConcurrencyLimiter({ permits: 256 });
    this.isLongPoll = optionalFunction("isLongPoll", options.isLongPoll) ?? isLeaseLongPoll;
    this.retryAfterMs = optionalPositive("retryAfterMs", options.retryAfterMs);
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Runs `next` holding one permit.
   * @throws OmniRelayError resource-exhausted `omnirelay.rate_limited` (metadata `procedure`, `retryAfterMs`,
   * `limiter`: `shared` or `long-poll`) when no permit is available.
   */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const longPoll = this.checkLongPoll(request);
    const limiter = longPoll ? this.longPollLimiter : this.select(request.meta);
    if (limiter === undefined) return next(request);
    const permit = limiter.tryAcquire();
    if (permit === undefined) {
      const procedure = request.meta.procedure;
      throw omniError(
        "resource-exhausted",
        MiddlewareErrorCodes.rateLimited,
        `Rate limit exceeded for procedure '${procedure}'.`,
        {
          procedure,
          retryAfterMs: String(this.retryHint(limiter)),
          limiter: longPoll ? "long-poll" : "shared",
        },
      );
    }
    try {
      return await next(request);
    } finally {
      permit.release();
    }
  }

  private checkLongPoll(request: UnaryRequest): boolean {
    try {
      return this.isLongPoll(request) === true;
    } catch (err) {
      this.logger.error(
        { err, procedure: request.meta.procedure },
        "The long-poll predicate failed; treating the call as short.",
      );
      return false;
    }
  }

  private select(meta: RequestMeta): RateLimiter | undefined {
    if (this.selector !== undefined) {
      try {
        const chosen = this.selector(meta);
        if (chosen !== undefined && chosen !== null) return chosen;
      } catch (err) {
        this.logger.error(
          { err, procedure: meta.procedure },
          "The rate limiter selector failed; using the shared limiter.",
        );
      }
    }
    return this.limiter;
  }

  private retryHint(limiter: RateLimiter): number {
    if (this.retryAfterMs !== undefined) return Math.ceil(this.retryAfterMs);
    if (limiter instanceof TokenBucketLimiter) return Math.max(1, Math.ceil(1000 / limiter.tokensPerSecond));
    return 1000;
  }
}

function toSelector(
  selector: RequestLimiterSelector | RequestLimiterSource | undefined,
): RequestLimiterSelector | undefined {
  if (selector === undefined) return undefined;
  if (typeof selector === "function") return selector;
  if (typeof selector?.selectLimiter === "function") return (meta) => selector.selectLimiter(meta);
  throw invalidOption("selector", "Option 'selector' must be a function or have a selectLimiter(meta) method.");
}

function checkLimiter(option: string, limiter: RateLimiter | undefined): RateLimiter | undefined {
  if (limiter !== undefined && typeof limiter?.tryAcquire !== "function") {
    throw invalidOption(option, `Option '${option}' must be a RateLimiter (with tryAcquire()).`);
  }
  return limiter;
}
