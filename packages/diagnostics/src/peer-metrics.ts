import type { Clock, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import type {
  PeerChooser,
  PeerHealthSnapshotProvider,
  PeerLeaseHealthSnapshot,
  PeerLeaseHealthStats,
} from "@omnirelay/core/peers";
import { Counter, Gauge, type Registry } from "prom-client";
import { OTHER_LABEL } from "./rpc-metrics.js";

/** A chooser whose decisions and rejections are exported (see `trackPeerChooser`). */
export interface ChooserMetricsSource {
  readonly chooser: string;
  readonly rejections: PeerChooser["rejections"];
}

/** What {@link PeerMetrics} reads at scrape time. */
export interface PeerMetricsSources {
  readonly peers: () => Iterable<PeerHealthSnapshotProvider>;
  readonly choosers: () => Iterable<ChooserMetricsSource>;
}

/** Settings of {@link PeerMetrics}. */
export interface PeerMetricsSettings {
  readonly clock: Clock;
  /** Peers that get a `peer` label value of their own; the others share `_other`. */
  readonly maxPeerLabels: number;
}

/** Outcomes of a chooser's `acquire`: `acquired`, or the suffix of a `peers.*` error code. */
const chooserOutcomes = new Set([
  "acquired",
  "none_registered",
  "none_available",
  "all_busy",
  "deadline_exceeded",
  "cancelled",
]);

interface StatsProvider {
  stats(): PeerLeaseHealthStats;
}

function hasStats(provider: PeerHealthSnapshotProvider): provider is PeerHealthSnapshotProvider & StatsProvider {
  return typeof (provider as Partial<StatsProvider>).stats === "function";
}

/** Every provider's snapshots, or `undefined` without a provider. */
function snapshotAll(providers: readonly PeerHealthSnapshotProvider[]): PeerLeaseHealthSnapshot[] | undefined {
  return providers.length > 0 ? snapshots(providers) : undefined;
}

function snapshots(providers: Iterable<PeerHealthSnapshotProvider>): PeerLeaseHealthSnapshot[] {
  const all: PeerLeaseHealthSnapshot[] = [];
  for (const provider of providers) {
    try {
      all.push(...provider.snapshot());
    } catch {
      // A failing provider contributes nothing this scrape.
    }
  }
  return all;
}

/** Least time between two label clean-ups started by a new peer finding every label taken, ms. */
const FREE_LABELS_EVERY_MS = 1_000;

/**
 * The `peer` label values: at most `max` peers have one of their own, every other peer is `_other`. A value is
 * freed (and its series removed) once no health provider knows the peer any more (a `PeerLeaseHealthTracker`
 * forgets idle peers), so the series stay bounded while workers come and go. Labels are freed at every scrape, and
 * when a new peer finds them all taken (`onFull`, which frees what it can).
 */
class PeerLabels {
  private readonly slots = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly hooks: { readonly onNew: (peer: string) => void; readonly onFull: () => void },
  ) {}

  label(peerId: string): string {
    if (this.slots.has(peerId)) return peerId;
    if (this.slots.size >= this.max) this.hooks.onFull();
    if (this.slots.size >= this.max) return OTHER_LABEL;
    this.slots.add(peerId);
    this.hooks.onNew(peerId);
    return peerId;
  }

  /** Frees the values of peers not in `known`; returns them. */
  retain(known: ReadonlySet<string>): string[] {
    const gone = [...this.slots].filter((peer) => !known.has(peer));
    for (const peer of gone) this.slots.delete(peer);
    return gone;
  }
}

// A counter that went backwards was reset (a new tracker behind the same provider): count its new total.
function delta(before: number, now: number): number {
  if (!Number.isFinite(now) || now < 0) return 0;
  return now >= before ? now - before : now;
}

/** Peer lease health and peer chooser instruments (internal to the control plane). */
export class PeerMetrics {
  private readonly labels: PeerLabels;
  private readonly expiries: Counter<"peer">;
  private readonly grants: Counter<"peer">;
  private readonly decisions: Counter<"chooser" | "outcome">;
  private readonly lastPeerStats = new WeakMap<object, PeerLeaseHealthStats>();
  private readonly lastRejections = new Map<string, { unhealthy: number; busy: number }>();
  private readonly clock: Clock;
  private nextFreeLabelsAt = Number.NEGATIVE_INFINITY;

  constructor(registry: Registry, sources: PeerMetricsSources, settings: PeerMetricsSettings) {
    const registers = [registry];
    this.clock = settings.clock;
    this.labels = new PeerLabels(settings.maxPeerLabels, {
      onNew: (peer) => {
        this.expiries.inc({ peer }, 0);
        this.grants.inc({ peer }, 0);
      },
      // Between scrapes, at most once a second: a snapshot of every provider is not free.
      onFull: () => {
        if (this.clock.now() >= this.nextFreeLabelsAt) this.freeLabels(snapshotAll([...sources.peers()]));
      },
    });
    this.expiries = new Counter({
      name: "omnirelay_peer_lease_expiries_total",
      help: "Leases that expired (no heartbeat in time), per peer that held them.",
      labelNames: ["peer"],
      registers,
    });
    this.grants = new Counter({
      name: "omnirelay_peer_lease_grants_total",
      help: "Leases granted, per peer that received them (who the work went to).",
      labelNames: ["peer"],
      registers,
    });
    this.decisions = new Counter({
      name: "omnirelay_peer_chooser_decisions_total",
      help: "Outcomes of a tracked peer chooser's acquire: acquired, or why no peer was chosen.",
      labelNames: ["chooser", "outcome"],
      registers,
    });
    const rejections: Counter<"chooser" | "reason"> = new Counter({
      name: "omnirelay_peer_chooser_rejections_total",
      help: "Candidates a tracked peer chooser skipped, by reason (unhealthy, busy).",
      labelNames: ["chooser", "reason"],
      registers,
      collect: () => this.syncRejections(sources.choosers(), rejections),
    });
    this.registerHealthGauges(registry, sources, settings.clock);
    this.registerTotals(registry, sources);
  }

  /** Creates a tracked chooser's series at 0. */
  trackChooser(chooser: string): void {
    this.decisions.inc({ chooser, outcome: "acquired" }, 0);
    this.lastRejections.set(chooser, { unhealthy: 0, busy: 0 });
  }

  /** Counts one acquire outcome of a tracked chooser. */
  chooserDecision(chooser: string, outcome: string): void {
    this.decisions.inc({ chooser, outcome: chooserOutcomes.has(outcome) ? outcome : OTHER_LABEL });
  }

  /** Counts the lease grants and expiries of one queue event, per peer. */
  observe(event: ResourceLeaseReplicationEvent): void {
    const peerId = event.peerId?.trim();
    if (!peerId) return;
    if (event.eventType === "LeaseGranted") this.grants.inc({ peer: this.labels.label(peerId) });
    else if (event.eventType === "LeaseExpired") this.expiries.inc({ peer: this.labels.label(peerId) });
  }

  private registerHealthGauges(registry: Registry, sources: PeerMetricsSources, clock: Clock): void {
    const registers = [registry];
    // The first gauge's collect fills all three from one snapshot, before any of them is written out (prom-client
    // collects and writes metrics in registration order), so they agree with each other.
    const peers: Gauge<"peer" | "state"> = new Gauge({
      name: "omnirelay_peer_lease_peers",
      help: "Peers by health state (healthy/unhealthy); peers beyond the labelled ones are counted under _other.",
      labelNames: ["peer", "state"],
      registers,
      collect: () => {
        const known = snapshotAll([...sources.peers()]);
        const all = known ?? [];
        this.freeLabels(known);
        peers.reset();
        active.reset();
        age.reset();
        const now = clock.now();
        const oldest = new Map<string, number>();
        for (const s of all) {
          const peer = this.labels.label(s.peerId);
          peers.inc({ peer, state: s.isHealthy ? "healthy" : "unhealthy" });
          active.inc({ peer }, s.activeLeases.length);
          if (s.lastHeartbeat === undefined) continue;
          const seconds = Math.max(0, now - s.lastHeartbeat) / 1000;
          oldest.set(peer, Math.max(oldest.get(peer) ?? 0, seconds));
        }
        for (const [peer, seconds] of oldest) age.set({ peer }, seconds);
      },
    });
    const active: Gauge<"peer"> = new Gauge({
      name: "omnirelay_peer_lease_active_leases",
      help: "Active leases a peer holds, per peer.",
      labelNames: ["peer"],
      registers,
    });
    const age: Gauge<"peer"> = new Gauge({
      name: "omnirelay_peer_lease_heartbeat_age_seconds",
      help: "Time since a peer's last liveness signal (heartbeat lateness), per peer; the oldest under _other.",
      labelNames: ["peer"],
      registers,
    });
  }

  /** Frees the labels of peers no provider knows (none without a provider: nothing then says a peer is gone). */
  private freeLabels(known: readonly PeerLeaseHealthSnapshot[] | undefined): void {
    this.nextFreeLabelsAt = this.clock.now() + FREE_LABELS_EVERY_MS;
    if (known === undefined) return;
    for (const peer of this.labels.retain(new Set(known.map((s) => s.peerId)))) {
      this.expiries.remove({ peer });
      this.grants.remove({ peer });
    }
  }

  private registerTotals(registry: Registry, sources: PeerMetricsSources): void {
    const registers = [registry];
    const peerGauge = (name: string, help: string, read: (all: PeerLeaseHealthSnapshot[]) => number): void => {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: () => gauge.set(read(snapshots(sources.peers()))),
      });
    };
    peerGauge("omnirelay_peer_lease_healthy", "Peers currently eligible for work.", (all) =>
      all.reduce((n, s) => n + (s.isHealthy ? 1 : 0), 0),
    );
    peerGauge("omnirelay_peer_lease_unhealthy", "Peers currently not eligible for work.", (all) =>
      all.reduce((n, s) => n + (s.isHealthy ? 0 : 1), 0),
    );
    peerGauge("omnirelay_peer_lease_ejected", "Peers ejected by outlier detection right now (no new leases).", (all) =>
      all.reduce((n, s) => n + (s.ejectedUntil === undefined ? 0 : 1), 0),
    );
    peerGauge(
      "omnirelay_peer_lease_pending_reassignments",
      "Leases of peers that went back to the queue and were not granted again yet.",
      (all) => all.reduce((n, s) => n + s.pendingReassignments, 0),
    );
    // The counters read every tracker's monotonic totals at scrape time and add the difference since the
    // previous scrape: no per-peer labels, and nothing is lost between scrapes.
    const sync = () => this.syncPeerCounters(sources.peers(), { assignments, heartbeats, disconnects, ejections });
    const assignments: Counter = new Counter({
      name: "omnirelay_peer_lease_assignments_total",
      help: "Lease assignments recorded by the peer health trackers.",
      registers,
      collect: sync,
    });
    const heartbeats: Counter = new Counter({
      name: "omnirelay_peer_lease_heartbeats_total",
      help: "Lease heartbeats recorded by the peer health trackers.",
      registers,
      collect: sync,
    });
    const disconnects: Counter = new Counter({
      name: "omnirelay_peer_lease_disconnects_total",
      help: "Peer transitions from connected to disconnected recorded by the peer health trackers.",
      registers,
      collect: sync,
    });
    const ejections: Counter = new Counter({
      name: "omnirelay_peer_lease_ejections_total",
      help: "Peers ejected by outlier detection (leases expiring in a row), counted once per ejection.",
      registers,
      collect: sync,
    });
  }

  private syncPeerCounters(
    providers: Iterable<PeerHealthSnapshotProvider>,
    counters: Record<"assignments" | "heartbeats" | "disconnects" | "ejections", Counter>,
  ): void {
    for (const provider of providers) {
      if (!hasStats(provider)) continue;
      let now: PeerLeaseHealthStats;
      try {
        now = provider.stats();
      } catch {
        continue;
      }
      const before = this.lastPeerStats.get(provider) ?? {
        assignments: 0,
        heartbeats: 0,
        disconnects: 0,
        ejections: 0,
      };
      counters.assignments.inc(delta(before.assignments, now.assignments));
      counters.heartbeats.inc(delta(before.heartbeats, now.heartbeats));
      counters.disconnects.inc(delta(before.disconnects, now.disconnects));
      // A provider of an older core reports no ejections.
      counters.ejections.inc(delta(before.ejections ?? 0, now.ejections ?? 0));
      this.lastPeerStats.set(provider, now);
    }
  }

  private syncRejections(choosers: Iterable<ChooserMetricsSource>, counter: Counter<"chooser" | "reason">): void {
    for (const source of choosers) {
      let now: { unhealthy: number; busy: number };
      try {
        now = source.rejections();
      } catch {
        continue;
      }
      const before = this.lastRejections.get(source.chooser) ?? { unhealthy: 0, busy: 0 };
      counter.inc({ chooser: source.chooser, reason: "unhealthy" }, delta(before.unhealthy, now.unhealthy));
      counter.inc({ chooser: source.chooser, reason: "busy" }, delta(before.busy, now.busy));
      this.lastRejections.set(source.chooser, { unhealthy: now.unhealthy, busy: now.busy });
    }
  }
}
