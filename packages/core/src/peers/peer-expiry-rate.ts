import { integerOption, numberOption } from "../wire/options.js";
import type { PeerEjectionOptions } from "./peer-ejection.js";

// The fleet-relative half of outlier ejection: a peer whose share of bad lease outcomes in an interval is far above
// the rest of the fleet's. Kept apart from the consecutive-expiry rule (peer-ejection.ts), which it feeds.

/**
 * The expiry-rate rule of {@link PeerEjectionOptions}. Over each interval of `intervalMs`, every peer's lease outcomes
 * are counted: bad ones are lease expiries and late heartbeats (see {@link PeerEjectionOptions.lateHeartbeatShare}),
 * good ones are completions, failure reports and timely heartbeats. When an interval closes, a peer with at
 * least `minimumOutcomes` outcomes whose bad share is at least `minimumRate` and at least `factor` times the pooled
 * bad share of the other peers with that many outcomes (at least `minimumPeers - 1` of them) is ejected, with reason
 * `"expiry-rate"`. A fleet that is bad as a whole ejects nobody: the rule looks for outliers, not for load.
 */
export interface PeerExpiryRateOptions {
  /** Length of an interval, in ms (> 0). @defaultValue 60000 */
  readonly intervalMs?: number;
  /** Outcomes a peer needs in an interval to be judged or to count in the fleet's share; an integer >= 1. @defaultValue 10 */
  readonly minimumOutcomes?: number;
  /** Peers with enough outcomes needed to judge any (the judged one included); an integer >= 2. @defaultValue 3 */
  readonly minimumPeers?: number;
  /** How many times the fleet's bad share a peer's must be (>= 1). @defaultValue 3 */
  readonly factor?: number;
  /** The smallest bad share that ejects (0–1). @defaultValue 0.25 */
  readonly minimumRate?: number;
}

/** A peer the rule picked when an interval closed: its bad share and the fleet's. */
export interface ExpiryRateOutlier {
  readonly peerId: string;
  readonly rate: number;
  readonly fleetRate: number;
}

interface Counts {
  bad: number;
  total: number;
}

/** Counts lease outcomes per peer and interval; picks the outliers when an interval closes. Internal. */
export class ExpiryRateDetector {
  readonly intervalMs: number;
  private readonly minimumOutcomes: number;
  private readonly minimumPeers: number;
  private readonly factor: number;
  private readonly minimumRate: number;
  private intervalStart: number | undefined;
  private counts = new Map<string, Counts>();

  /** @throws OmniRelayError `invalid-argument` `resourcelease.options.invalid` for an option out of range. */
  constructor(options: PeerExpiryRateOptions) {
    const name = (key: string) => `ejection.expiryRate.${key}`;
    this.intervalMs = numberOption(name("intervalMs"), options.intervalMs, {
      min: 0,
      aboveMin: true,
      fallback: 60_000,
    });
    this.minimumOutcomes = integerOption(name("minimumOutcomes"), options.minimumOutcomes, { min: 1, fallback: 10 });
    this.minimumPeers = integerOption(name("minimumPeers"), options.minimumPeers, { min: 2, fallback: 3 });
    this.factor = numberOption(name("factor"), options.factor, { min: 1, fallback: 3 });
    this.minimumRate = numberOption(name("minimumRate"), options.minimumRate, { min: 0, max: 1, fallback: 0.25 });
  }

  /**
   * Counts one outcome of `peerId` at `at`. Returns the outliers of the interval this outcome closed (the outcome
   * itself counts in the next one), or none.
   */
  record(peerId: string, outcome: { bad: boolean; at: number }): ExpiryRateOutlier[] {
    let outliers: ExpiryRateOutlier[] = [];
    if (this.intervalStart === undefined) this.intervalStart = outcome.at;
    else if (outcome.at >= this.intervalStart + this.intervalMs) {
      outliers = this.outliers();
      this.counts = new Map();
      // Intervals stay aligned to the first one; an idle stretch skips the empty ones.
      const skipped = Math.floor((outcome.at - this.intervalStart) / this.intervalMs);
      this.intervalStart += skipped * this.intervalMs;
    }
    let counts = this.counts.get(peerId);
    if (!counts) {
      counts = { bad: 0, total: 0 };
      this.counts.set(peerId, counts);
    }
    counts.total++;
    if (outcome.bad) counts.bad++;
    return outliers;
  }

  /** Whether `peerId` has outcomes in the interval not judged yet. */
  hasOutcomes(peerId: string): boolean {
    return this.counts.has(peerId);
  }

  forget(peerId: string): void {
    this.counts.delete(peerId);
  }

  private outliers(): ExpiryRateOutlier[] {
    const judged = [...this.counts].filter(([, c]) => c.total >= this.minimumOutcomes);
    if (judged.length < this.minimumPeers) return [];
    let bad = 0;
    let total = 0;
    for (const [, c] of judged) {
      bad += c.bad;
      total += c.total;
    }
    const out: ExpiryRateOutlier[] = [];
    for (const [peerId, c] of judged) {
      const rate = c.bad / c.total;
      const fleetRate = (bad - c.bad) / (total - c.total);
      if (rate >= this.minimumRate && rate >= this.factor * fleetRate) out.push({ peerId, rate, fleetRate });
    }
    // Worst first: when the ejected share is capped, the worst outliers go.
    return out.sort((a, b) => b.rate - a.rate || (a.peerId < b.peerId ? -1 : 1));
  }
}
