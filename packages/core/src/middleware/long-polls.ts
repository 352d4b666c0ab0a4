import type { RateLimiter } from "../backpressure/rate-limiters.js";
import type { RequestMeta, UnaryRequest } from "../dispatcher/types.js";
import { getPropertyIgnoreCase } from "../replication/case-insensitive.js";
import { canonicalIpAddress } from "./ip-address.js";

// Long-poll admission for RateLimitingMiddleware. Internal: nothing here is exported from the package.

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

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

/**
 * The same call as a plain poll: every `waitMs` (any case) in its JSON body replaced by a single `waitMs: 0`.
 * `undefined` when the body is not a JSON object with a `waitMs`, so the call cannot be turned into one.
 */
export function asPlainPoll(request: UnaryRequest): UnaryRequest | undefined {
  const body = parseObject(request.body);
  if (body === undefined || getPropertyIgnoreCase(body, "waitMs") === undefined) return undefined;
  // fromEntries defines properties (an own `__proto__` key stays a key), unlike assignment.
  const rewritten = Object.fromEntries([
    ...Object.entries(body).filter(([key]) => key.toLowerCase() !== "waitms"),
    ["waitMs", 0],
  ]);
  return { ...request, body: encoder.encode(JSON.stringify(rewritten)) };
}

/** The request body as a JSON object, or `undefined`. */
export function parseObject(body: Uint8Array): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
