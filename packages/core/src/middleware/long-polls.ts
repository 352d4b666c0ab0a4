import type { RateLimiter } from "../backpressure/rate-limiters.js";
import type { RequestMeta, UnaryRequest } from "../dispatcher/types.js";
import { canonicalIpAddress } from "./ip-address.js";

// Long-poll admission for RateLimitingMiddleware. Internal: nothing here is exported from the package.

/** Who is calling, for per-caller long-poll counts. */
export interface LongPollCaller {
  /** `principal:<name>` or `address:<ip>`. */
  readonly key: string;
  /** The call carries a principal or a client certificate the TLS handshake verified. */
  readonly authenticated: boolean;
}

/**
 * The identity long polls are counted against: the authenticated principal (`meta.principal`, or the subject of a
 * verified client certificate when principal binding has not run yet), else the canonical remote address. Calls
 * with neither share one `address:unknown` bucket.
 */
export function longPollCaller(meta: RequestMeta): LongPollCaller {
  if (meta.principal) return { key: `principal:${meta.principal}`, authenticated: true };
  const security = meta.security;
  if (security?.clientCertificateVerified && security.clientCertificateSubject) {
    return { key: `principal:${security.clientCertificateSubject}`, authenticated: true };
  }
  const raw = security?.remoteAddress;
  const address = raw === undefined ? "unknown" : (canonicalIpAddress(raw) ?? raw);
  return { key: `address:${address}`, authenticated: false };
}

/** Why a long poll was not admitted: the caller's own share, the anonymous share, or the whole pool is in use. */
export type LongPollRefusal = "long-poll-caller" | "long-poll-anonymous" | "long-poll";

/** Options of {@link LongPollAdmission}. */
export interface LongPollAdmissionOptions {
  readonly pool: RateLimiter;
  readonly perCaller: number;
  readonly anonymous: number;
}

/**
 * Counts the long polls in flight per caller and for all anonymous callers together, on top of the pool limiter.
 * Memory is bounded by the number of long polls in flight: a caller's entry goes when its last poll settles.
 */
export class LongPollAdmission {
  private readonly perCallerInFlight = new Map<string, number>();
  private anonymousInFlight = 0;

  constructor(private readonly options: LongPollAdmissionOptions) {}

  /** Long polls in flight for anonymous callers. */
  get anonymousCount(): number {
    return this.anonymousInFlight;
  }

  /** Takes a slot for one long poll: a release function, or why there is none. */
  admit(caller: LongPollCaller): { release: () => void } | { refused: LongPollRefusal } {
    const held = this.perCallerInFlight.get(caller.key) ?? 0;
    if (held >= this.options.perCaller) return { refused: "long-poll-caller" };
    if (!caller.authenticated && this.anonymousInFlight >= this.options.anonymous) {
      return { refused: "long-poll-anonymous" };
    }
    const permit = this.options.pool.tryAcquire();
    if (permit === undefined) return { refused: "long-poll" };
    this.perCallerInFlight.set(caller.key, held + 1);
    if (!caller.authenticated) this.anonymousInFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        permit.release();
        if (!caller.authenticated) this.anonymousInFlight--;
        const left = (this.perCallerInFlight.get(caller.key) ?? 1) - 1;
        if (left > 0) this.perCallerInFlight.set(caller.key, left);
        else this.perCallerInFlight.delete(caller.key);
      },
    };
  }
}

/** The `waitMs` a call's request message asks for (a lease request's), or undefined. */
export function requestedWaitMs(request: UnaryRequest): number | undefined {
  const message = request.message;
  if (typeof message !== "object" || message === null) return undefined;
  const waitMs = (message as { waitMs?: unknown }).waitMs;
  return typeof waitMs === "number" ? waitMs : undefined;
}

/** The same call as a plain poll (`waitMs: 0`); `undefined` when its request asks for no wait. */
export function asPlainPoll(request: UnaryRequest): UnaryRequest | undefined {
  if (requestedWaitMs(request) === undefined) return undefined;
  return { ...request, message: { ...(request.message as object), waitMs: 0 } };
}
