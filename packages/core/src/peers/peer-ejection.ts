import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { integerOption, numberOption } from "../wire/options.js";
import { ExpiryRateDetector, type PeerExpiryRateOptions } from "./peer-expiry-rate.js";

// Outlier ejection of worker peers (Envoy-style), kept apart from the tracker's lease bookkeeping. The tracker feeds
// it each peer's lease expiries and liveness; choosers and the dispatcher's `lease` ask it who is ejected.

/**
 * Outlier ejection of {@link PeerLeaseHealthTracker} (opt-in: absent, nobody is ejected). A peer that lets
 * `consecutiveExpiries` of its leases expire in a row, with no heartbeat, completion or failure report in between, is
 * ejected: it gets no new grants and choosers skip it until the ejection ends. Its `n`-th ejection lasts
 * `min(baseEjectionMs × n, maxEjectionMs)`; `n` starts again at 1 when the previous ejection ended more than
 * `maxEjectionMs` before. Leases it already holds keep working (heartbeat, complete, fail).
 */
export interface PeerEjectionOptions {
  /** Lease expiries in a row that eject a peer; an integer >= 1. @defaultValue 5 */
  readonly consecutiveExpiries?: number;
  /** How long the first ejection lasts, in ms (> 0). @defaultValue 30000 */
  readonly baseEjectionMs?: number;
  /** The longest an ejection lasts, in ms (>= `baseEjectionMs`). @defaultValue 600000 */
  readonly maxEjectionMs?: number;
  /**
   * The largest share of the known peers ejected at once, in percent (0–100, 0 turns ejection off). The allowance is
   * `floor(peers × percent / 100)` but at least 1 while the tracker knows two peers or more; a sole peer is never
   * ejected (that would stop all work). A peer due for ejection past the allowance stays in service, and is ejected
   * on its next expiry if room has been made.
   * @defaultValue 50
   */
  readonly maxEjectedPercent?: number;
  /**
   * The fleet-relative rule: a peer whose share of expiries and late heartbeats in an interval is far above the other
   * peers' is ejected too (see {@link PeerExpiryRateOptions}); `false` turns it off.
   * @defaultValue on, with its defaults
   */
  readonly expiryRate?: PeerExpiryRateOptions | false;
  /**
   * The share of a lease's time after which its heartbeat is late (0–1; 1: never). A late heartbeat is a near miss:
   * it does not end a run of expiries, and it counts as a bad outcome for `expiryRate`. Known only for leases the
   * tracker saw granted or renewed through the queue's events (`observe`).
   * @defaultValue 0.8
   */
  readonly lateHeartbeatShare?: number;
}

/** Why and until when a peer is ejected. Times are ms since the epoch. */
export interface PeerEjection {
  readonly peerId: string;
  /** Why: `"consecutive-expiries"` or `"expiry-rate"`. */
  readonly reason: string;
  /** Lease expiries in a row that triggered it. */
  readonly consecutiveExpiries: number;
  readonly ejectedAt: number;
  readonly ejectedUntil: number;
  /** How many times the peer was ejected, this one included (what the duration grew with). */
  readonly ejections: number;
  /** With `"expiry-rate"`: the peer's share of bad lease outcomes in the interval, and the rest of the fleet's. */
  readonly expiryRate?: number;
  readonly fleetExpiryRate?: number;
}

interface EjectionRecord {
  consecutive: number;
  ejections: number;
  current?: PeerEjection;
}

/** The settings of a {@link PeerEjector}, validated. */
interface EjectionSettings {
  readonly consecutiveExpiries: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectedPercent: number;
}

/** Options of {@link PeerEjector.recordExpiry}. */
export interface ExpiryContext {
  /** When the lease expired (ms since the epoch). */
  readonly at: number;
  /** How many peers the tracker knows (the fleet the ejected share is taken of). */
  readonly fleet: number;
}

/** The ejection state of every peer. Internal to {@link PeerLeaseHealthTracker}. */
export class PeerEjector {
  private readonly settings: EjectionSettings;
  private readonly records = new Map<string, EjectionRecord>();
  private total = 0;
  /** The fleet-relative rule, unless turned off. */
  readonly rate: ExpiryRateDetector | undefined;
  private readonly lateShare: number;

  /** @throws OmniRelayError `invalid-argument` `resourcelease.options.invalid` for an option out of range. */
  constructor(options: PeerEjectionOptions) {
    const base = numberOption("ejection.baseEjectionMs", options.baseEjectionMs, {
      min: 0,
      aboveMin: true,
      fallback: 30_000,
    });
    this.settings = {
      consecutiveExpiries: integerOption("ejection.consecutiveExpiries", options.consecutiveExpiries, {
        min: 1,
        fallback: 5,
      }),
      baseEjectionMs: base,
      maxEjectionMs: numberOption("ejection.maxEjectionMs", options.maxEjectionMs, {
        min: base,
        fallback: Math.max(base, 600_000),
      }),
      maxEjectedPercent: numberOption("ejection.maxEjectedPercent", options.maxEjectedPercent, {
        min: 0,
        max: 100,
        fallback: 50,
      }),
    };
    this.rate = options.expiryRate === false ? undefined : new ExpiryRateDetector(options.expiryRate ?? {});
    this.lateShare = numberOption("ejection.lateHeartbeatShare", options.lateHeartbeatShare, {
      min: 0,
      max: 1,
      fallback: 0.8,
    });
  }

  /**
   * Whether a heartbeat at `at` on a lease renewed at `renewedAt` until `expiresAt` came after the late share of its
   * time had run; unknown times are never late.
   */
  isLate(lease: { readonly renewedAt?: number; readonly expiresAt?: number }, at: number): boolean {
    if (lease.renewedAt === undefined || lease.expiresAt === undefined) return false;
    const length = lease.expiresAt - lease.renewedAt;
    return length > 0 && at - lease.renewedAt > this.lateShare * length;
  }

  /** Ejections so far, over every peer. */
  get ejections(): number {
    return this.total;
  }

  /**
   * Counts an expiry of one of `peerId`'s leases; returns the ejection it started, if any. Expiries of leases
   * granted before an ejection and expiring during it are not counted (the peer is out of rotation already).
   */
  recordExpiry(peerId: string, context: ExpiryContext): PeerEjection | undefined {
    const record = this.record(peerId);
    if (this.active(record, context.at)) return undefined;
    record.consecutive++;
    if (record.consecutive < this.settings.consecutiveExpiries) return undefined;
    return this.eject(peerId, { reason: "consecutive-expiries", ...context });
  }

  /**
   * Counts one lease outcome of `peerId` for the fleet-relative rule (bad: an expiry or a late heartbeat); returns the
   * ejections it started when the outcome closed an interval. None when the rule is off.
   */
  recordOutcome(peerId: string, outcome: ExpiryContext & { readonly bad: boolean }): PeerEjection[] {
    const outliers = this.rate?.record(peerId, outcome) ?? [];
    const out: PeerEjection[] = [];
    for (const { peerId: id, rate, fleetRate } of outliers) {
      if (this.active(this.record(id), outcome.at)) continue;
      const ejection = this.eject(id, { reason: "expiry-rate", at: outcome.at, fleet: outcome.fleet });
      if (!ejection) break; // the ejected share is at its cap: the rest (less bad) stay
      const withRates: PeerEjection = { ...ejection, expiryRate: rate, fleetExpiryRate: fleetRate };
      this.record(id).current = withRates;
      out.push(withRates);
    }
    return out;
  }

  private eject(peerId: string, why: ExpiryContext & { readonly reason: string }): PeerEjection | undefined {
    const record = this.record(peerId);
    if (this.ejectedCount(why.at) >= this.allowance(why.fleet)) return undefined;
    const previous = record.current;
    const fresh = previous === undefined || why.at - previous.ejectedUntil > this.settings.maxEjectionMs;
    const n = fresh ? 1 : record.ejections + 1;
    const ms = Math.min(this.settings.baseEjectionMs * n, this.settings.maxEjectionMs);
    const ejection: PeerEjection = {
      peerId,
      reason: why.reason,
      consecutiveExpiries: record.consecutive,
      ejectedAt: why.at,
      ejectedUntil: why.at + ms,
      ejections: n,
    };
    record.current = ejection;
    record.ejections = n;
    record.consecutive = 0;
    this.total++;
    return ejection;
  }

  /** A heartbeat, completion or failure report of `peerId`: its run of expiries ends. */
  recordSuccess(peerId: string): void {
    const record = this.records.get(peerId);
    if (record) record.consecutive = 0;
  }

  /** The ejection of `peerId` in force at `now`, if any. */
  current(peerId: string, now: number): PeerEjection | undefined {
    const record = this.records.get(peerId);
    return record && this.active(record, now) ? record.current : undefined;
  }

  /**
   * Whether forgetting `peerId` at `now` would lose state that still counts: an ejection in force, one whose
   * back-off still applies (ended at most `maxEjectionMs` ago), or outcomes of the interval not judged yet.
   */
  holds(peerId: string, now: number): boolean {
    const ejection = this.records.get(peerId)?.current;
    if (ejection !== undefined && now - ejection.ejectedUntil <= this.settings.maxEjectionMs) return true;
    return this.rate?.hasOutcomes(peerId) ?? false;
  }

  forget(peerId: string): void {
    this.records.delete(peerId);
    this.rate?.forget(peerId);
  }

  private active(record: EjectionRecord, now: number): boolean {
    return record.current !== undefined && now < record.current.ejectedUntil;
  }

  private ejectedCount(now: number): number {
    let n = 0;
    for (const record of this.records.values()) if (this.active(record, now)) n++;
    return n;
  }

  private allowance(fleet: number): number {
    const percent = this.settings.maxEjectedPercent;
    if (percent === 0 || fleet < 2) return 0;
    return Math.max(1, Math.floor((fleet * percent) / 100));
  }

  private record(peerId: string): EjectionRecord {
    let record = this.records.get(peerId);
    if (!record) {
      record = { consecutive: 0, ejections: 0 };
      this.records.set(peerId, record);
    }
    return record;
  }
}

/**
 * The refusal of an ejected peer's `lease`: `unavailable` `resourcelease.peer.ejected`, metadata `peerId`, `reason`,
 * `ejectedUntil` (ISO-8601), `retryAfterMs` (from `now`) and `ejections`.
 */
export function peerEjectedError(ejection: PeerEjection, now: number): OmniRelayError {
  const retryAfterMs = Math.max(0, Math.ceil(ejection.ejectedUntil - now));
  const until = new Date(ejection.ejectedUntil).toISOString();
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.resourceLease.peerEjected,
    message: `Peer '${ejection.peerId}' is ejected (${ejection.reason}) until ${until}; it gets no new leases.`,
    metadata: {
      peerId: ejection.peerId,
      reason: ejection.reason,
      ejectedUntil: until,
      retryAfterMs: String(retryAfterMs),
      ejections: String(ejection.ejections),
    },
  });
}
