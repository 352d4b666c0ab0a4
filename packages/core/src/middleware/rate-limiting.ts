import { ConcurrencyLimiter, type RateLimiter, TokenBucketLimiter } from "../backpressure/rate-limiters.js";
import { type Logger, silentLogger } from "../contracts/health.js";
import type {
  RequestMeta,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { integerOption } from "../wire/options.js";
import { asPlainPoll, LongPollAdmission, longPollCaller, requestedWaitMs } from "./long-polls.js";
import { optionalFunction, optionalPositive } from "./options.js";

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
  /**
   * Most long polls one caller may have waiting at once. The caller is its authenticated principal
   * (`meta.principal`, or the subject of a verified client certificate), else its remote address. Place this
   * middleware after `PrincipalBindingMiddleware` for JWT principals to count; a verified certificate counts
   * wherever it is placed. @defaultValue 32
   */
  readonly longPollsPerCaller?: number;
  /**
   * Most long polls that callers without a principal or verified certificate may have waiting together; the rest
   * of the long-poll pool stays free for authenticated workers. `0` makes every anonymous long poll a plain poll.
   * @defaultValue three quarters of `longPollLimiter.permits` when it is a `ConcurrencyLimiter` (192 for the
   * default pool of 256), else 192
   */
  readonly anonymousLongPolls?: number;
  /** Decides whether a call is a long poll. @defaultValue {@link isLeaseLongPoll} */
  readonly isLongPoll?: (request: UnaryRequest) => boolean;
  /** Retry hint put on refusals. @defaultValue for a `TokenBucketLimiter` the time to refill one token, else `1000` */
  readonly retryAfterMs?: number;
  /** Receives selector and long-poll predicate failures. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/**
 * Whether a call is a waiting lease: its procedure is `{namespace}::lease` (any case) and its request asks for a
 * `waitMs` greater than 0.
 */
export function isLeaseLongPoll(request: UnaryRequest): boolean {
  if (!request.meta.procedure.trim().toLowerCase().endsWith("::lease")) return false;
  return (requestedWaitMs(request) ?? 0) > 0;
}

/**
 * Takes one permit per call and gives it back when the call settles; a refused permit fails the call with
 * `resource-exhausted`. Long polls draw from their own pool so they cannot hold every shared permit, and within it
 * no caller may hold more than `longPollsPerCaller` and anonymous callers together no more than
 * `anonymousLongPolls`. A long poll these limits do not admit is not refused: it runs at once as a plain poll
 * (`waitMs: 0`), so it gets an item if one is pending, else an empty answer, and the caller polls again.
 */
export class RateLimitingMiddleware implements UnaryInboundMiddleware {
  private readonly limiter: RateLimiter | undefined;
  private readonly selector: RequestLimiterSelector | undefined;
  private readonly longPolls: LongPollAdmission;
  private readonly isLongPoll: (request: UnaryRequest) => boolean;
  private readonly retryAfterMs: number | undefined;
  private readonly logger: Logger;

  /**
   * Creates the middleware.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a limiter without
   * `tryAcquire`, a selector that is neither a function nor has `selectLimiter`, a bad `retryAfterMs`, or a
   * `longPollsPerCaller` / `anonymousLongPolls` that is not an integer (>= 1 / >= 0).
   */
  constructor(options: RateLimitingMiddlewareOptions = {}) {
    this.selector = toSelector(options.selector);
    this.limiter =
      checkLimiter("limiter", options.limiter) ??
      (this.selector === undefined ? new ConcurrencyLimiter({ permits: 1024 }) : undefined);
    const pool = checkLimiter("longPollLimiter", options.longPollLimiter) ?? new ConcurrencyLimiter({ permits: 256 });
    const defaultAnonymous = pool instanceof ConcurrencyLimiter ? Math.floor((pool.permits * 3) / 4) : 192;
    this.longPolls = new LongPollAdmission({
      pool,
      perCaller: integerOption("longPollsPerCaller", options.longPollsPerCaller, { min: 1, fallback: 32 }),
      anonymous: integerOption("anonymousLongPolls", options.anonymousLongPolls, {
        min: 0,
        fallback: defaultAnonymous,
      }),
    });
    this.isLongPoll = optionalFunction("isLongPoll", options.isLongPoll) ?? isLeaseLongPoll;
    this.retryAfterMs = optionalPositive("retryAfterMs", options.retryAfterMs);
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Runs `next` holding one permit; a long poll the long-poll limits do not admit runs as a plain poll.
   * @throws OmniRelayError resource-exhausted `omnirelay.rate_limited` (metadata `procedure`, `retryAfterMs`,
   * `limiter`: `shared`, or `long-poll` for a long poll whose body has no `waitMs` to set to 0) when no permit is
   * available.
   */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    let call = request;
    if (this.checkLongPoll(request)) {
      const admitted = this.longPolls.admit(longPollCaller(request.meta));
      if ("release" in admitted) {
        try {
          return await next(request);
        } finally {
          admitted.release();
        }
      }
      const plain = asPlainPoll(request);
      if (plain === undefined) throw this.refusal(request.meta, "long-poll", Math.ceil(this.retryAfterMs ?? 1000));
      this.logger.debug(
        { procedure: request.meta.procedure, reason: admitted.refused },
        "A long poll over its share runs as a plain poll.",
      );
      call = plain;
    }
    const limiter = this.select(call.meta);
    if (limiter === undefined) return next(call);
    const permit = limiter.tryAcquire();
    if (permit === undefined) throw this.refusal(call.meta, "shared", this.retryHint(limiter));
    try {
      return await next(call);
    } finally {
      permit.release();
    }
  }

  private refusal(meta: RequestMeta, limiter: "shared" | "long-poll", retryAfterMs: number): OmniRelayError {
    const procedure = meta.procedure;
    return new OmniRelayError({
      status: "resource-exhausted",
      code: ErrorCodes.rpc.rateLimited,
      message: `Rate limit exceeded for procedure '${procedure}'.`,
      metadata: { procedure, retryAfterMs: String(retryAfterMs), limiter },
    });
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
  throw OmniRelayError.invalidOption(
    "selector",
    "Option 'selector' must be a function or have a selectLimiter(meta) method.",
  );
}

function checkLimiter(option: string, limiter: RateLimiter | undefined): RateLimiter | undefined {
  if (limiter !== undefined && typeof limiter?.tryAcquire !== "function") {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a RateLimiter (with tryAcquire()).`);
  }
  return limiter;
}
