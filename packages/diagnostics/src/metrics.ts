import type { Dispatcher, ResourceLeaseEventType, ResourceLeaseQueueStats } from "@omnirelay/core";
import { OmniRelayError, ResourceLeaseEventTypes } from "@omnirelay/core";
import type { RpcCallMetric, RpcMetricsRecorder } from "@omnirelay/core/middleware";
import type { PeerHealthSnapshotProvider, PeerLeaseHealthStats } from "@omnirelay/core/peers";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { integerOption } from "./options.js";

/** Label value used when a value is not one of the bounded, known ones. */
export const OTHER_LABEL = "_other";

/** Default histogram buckets for durations and lags, in ms. */
export const defaultDurationBucketsMs: readonly number[] = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/** Options of {@link PrometheusRpcMetricsRecorder}. */
export interface PrometheusRpcMetricsRecorderOptions {
  /** Registry that receives `omnirelay_http_requests_total` and `omnirelay_http_request_duration`. */
  readonly registry: Registry;
  /**
   * Only procedures this dispatcher has registered become label values; anything else is `_other`.
   * @defaultValue `undefined` (the first `maxProcedures` distinct names are kept)
   */
  readonly dispatcher?: Pick<Dispatcher, "lookup">;
  /** Distinct procedure label values kept; later ones are `_other`. @defaultValue 500 */
  readonly maxProcedures?: number;
  /** Buckets of the duration histogram, ms. @defaultValue {@link defaultDurationBucketsMs} */
  readonly bucketsMs?: readonly number[];
}

/**
 * An {@link RpcMetricsRecorder} backed by prom-client: feed it to core's `RpcMetricsMiddleware` to get the counter
 * `omnirelay_http_requests_total{procedure,transport,status}` and the histogram
 * `omnirelay_http_request_duration{procedure,transport}` (ms). Label sets are bounded: unknown procedures and
 * names beyond `maxProcedures` are recorded as `_other`.
 */
export class PrometheusRpcMetricsRecorder implements RpcMetricsRecorder {
  private readonly requests: Counter<"procedure" | "transport" | "status">;
  private readonly duration: Histogram<"procedure" | "transport">;
  private readonly dispatcher: Pick<Dispatcher, "lookup"> | undefined;
  private readonly maxProcedures: number;
  private readonly procedures = new Set<string>();

  /**
   * Registers the two instruments in `registry`.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) without a registry,
   * or for a bad `maxProcedures`; prom-client's own Error when the registry already holds these metric names.
   */
  constructor(options: PrometheusRpcMetricsRecorderOptions) {
    if (typeof options?.registry?.registerMetric !== "function") {
      throw OmniRelayError.invalidOption("registry", "Option 'registry' must be a prom-client Registry.");
    }
    this.dispatcher = options.dispatcher;
    this.maxProcedures = integerOption("maxProcedures", options.maxProcedures, 500, 1);
    this.requests = new Counter({
      name: "omnirelay_http_requests_total",
      help: "Inbound RPC calls handled, by procedure, transport and outcome status.",
      labelNames: ["procedure", "transport", "status"],
      registers: [options.registry],
    });
    this.duration = new Histogram({
      name: "omnirelay_http_request_duration",
      help: "Time to handle an inbound RPC call, in milliseconds.",
      labelNames: ["procedure", "transport"],
      buckets: [...(options.bucketsMs ?? defaultDurationBucketsMs)],
      registers: [options.registry],
    });
  }

  /** Counts the call and observes its duration. Never throws for a well-formed metric. */
  record(metric: RpcCallMetric): void {
    const procedure = this.procedureLabel(metric.procedure);
    this.requests.inc({ procedure, transport: metric.transport, status: metric.status });
    this.duration.observe({ procedure, transport: metric.transport }, Math.max(0, metric.durationMs));
  }

  private procedureLabel(raw: string): string {
    const name = raw.trim().toLowerCase();
    if (this.procedures.has(name)) return name;
    if (this.dispatcher !== undefined && this.dispatcher.lookup(name) === undefined) return OTHER_LABEL;
    if (this.procedures.size >= this.maxProcedures) return OTHER_LABEL;
    this.procedures.add(name);
    return name;
  }
}

/** What {@link ResourceLeaseMetrics} reads at scrape time. */
export interface ResourceLeaseMetricsSources {
  /** Every registered shard with its queue counters. */
  readonly shards: () => Iterable<readonly [string, () => ResourceLeaseQueueStats]>;
  /** Every registered peer health provider. */
  readonly peers: () => Iterable<PeerHealthSnapshotProvider>;
}

interface StatsProvider {
  stats(): PeerLeaseHealthStats;
}

function hasStats(provider: PeerHealthSnapshotProvider): provider is PeerHealthSnapshotProvider & StatsProvider {
  return typeof (provider as Partial<StatsProvider>).stats === "function";
}

const eventTypes = new Set<string>(Object.keys(ResourceLeaseEventTypes));

/** The ResourceLease and peer-health instruments of DESIGN §7 in one registry (internal to the control plane). */
export class ResourceLeaseMetrics {
  private readonly transitions: Counter<"shard" | "state">;
  private readonly events: Counter<"shard" | "event_type">;
  private readonly lag: Histogram<"sink" | "shard">;
  private readonly lastPeerStats = new WeakMap<object, PeerLeaseHealthStats>();

  constructor(registry: Registry, sources: ResourceLeaseMetricsSources, lagBucketsMs?: readonly number[]) {
    const registers = [registry];
    const pending: Gauge<"shard"> = new Gauge({
      name: "omnirelay_resourcelease_pending",
      help: "Items waiting for a lease (including those in a retry backoff), per shard.",
      labelNames: ["shard"],
      registers,
      collect: () => {
        pending.reset();
        for (const [shard, stats] of sources.shards()) pending.set({ shard }, readStats(stats)?.pendingCount ?? 0);
      },
    });
    const active: Gauge<"shard"> = new Gauge({
      name: "omnirelay_resourcelease_active",
      help: "Active leases, per shard.",
      labelNames: ["shard"],
      registers,
      collect: () => {
        active.reset();
        for (const [shard, stats] of sources.shards()) active.set({ shard }, readStats(stats)?.activeLeaseCount ?? 0);
      },
    });
    const shardGauge = (name: string, help: string, read: (s: ResourceLeaseQueueStats) => number): void => {
      const gauge: Gauge<"shard"> = new Gauge({
        name,
        help,
        labelNames: ["shard"],
        registers,
        collect: () => {
          gauge.reset();
          for (const [shard, stats] of sources.shards()) {
            const s = readStats(stats);
            if (s) gauge.set({ shard }, read(s));
          }
        },
      });
    };
    shardGauge(
      "omnirelay_resourcelease_bytes_held",
      "Payload bytes of the items a shard holds (pending, delayed, leased), counted against its maxBytes.",
      (s) => s.bytesHeld ?? 0,
    );
    shardGauge("omnirelay_resourcelease_max_bytes", "A shard's byte budget (maxBytes).", (s) => s.maxBytes ?? 0);
    shardGauge("omnirelay_resourcelease_dead_letters", "Dead-lettered items, per shard.", (s) => s.deadLetterCount);
    shardGauge(
      "omnirelay_resourcelease_dead_letter_bytes",
      "Payload bytes of a shard's dead letters.",
      (s) => s.deadLetterBytes ?? 0,
    );
    this.transitions = new Counter({
      name: "omnirelay_resourcelease_backpressure_transitions_total",
      help: "Backpressure gate transitions, per shard and new state (active/inactive).",
      labelNames: ["shard", "state"],
      registers,
    });
    this.events = new Counter({
      name: "omnirelay_resourcelease_replication_events_total",
      help: "Replication events produced by the queues, per shard and event type.",
      labelNames: ["shard", "event_type"],
      registers,
    });
    this.lag = new Histogram({
      name: "omnirelay_resourcelease_replication_lag",
      help: "Time from a queue mutation to its application by a replication sink, in milliseconds.",
      labelNames: ["sink", "shard"],
      buckets: [...(lagBucketsMs ?? defaultDurationBucketsMs)],
      registers,
    });
    const peerGauge = (name: string, help: string, read: (totals: PeerTotals) => number): void => {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: () => gauge.set(read(peerTotals(sources.peers()))),
      });
    };
    peerGauge("omnirelay_peer_lease_healthy", "Peers currently eligible for work.", (t) => t.healthy);
    peerGauge("omnirelay_peer_lease_unhealthy", "Peers currently not eligible for work.", (t) => t.unhealthy);
    peerGauge(
      "omnirelay_peer_lease_pending_reassignments",
      "Leases of peers that went back to the queue and were not granted again yet.",
      (t) => t.pendingReassignments,
    );
    // The three counters read every tracker's monotonic totals at scrape time and add the difference since the
    // previous scrape: no per-peer labels, and nothing is lost between scrapes.
    const assignments: Counter = new Counter({
      name: "omnirelay_peer_lease_assignments_total",
      help: "Lease assignments recorded by the peer health trackers.",
      registers,
      collect: () => this.syncPeerCounters(sources.peers(), { assignments, heartbeats, disconnects }),
    });
    const heartbeats: Counter = new Counter({
      name: "omnirelay_peer_lease_heartbeats_total",
      help: "Lease heartbeats recorded by the peer health trackers.",
      registers,
      collect: () => this.syncPeerCounters(sources.peers(), { assignments, heartbeats, disconnects }),
    });
    const disconnects: Counter = new Counter({
      name: "omnirelay_peer_lease_disconnects_total",
      help: "Peer transitions from connected to disconnected recorded by the peer health trackers.",
      registers,
      collect: () => this.syncPeerCounters(sources.peers(), { assignments, heartbeats, disconnects }),
    });
  }

  /** Counts one backpressure transition of a shard. */
  backpressureTransition(shard: string, isActive: boolean): void {
    this.transitions.inc({ shard, state: isActive ? "active" : "inactive" });
  }

  /** Counts one replication event of a shard; unknown event types are counted as `_other`. */
  replicationEvent(shard: string, eventType: ResourceLeaseEventType | string): void {
    this.events.inc({ shard, event_type: eventTypes.has(eventType) ? eventType : OTHER_LABEL });
  }

  /** Observes the lag of one applied event, ms. */
  replicationLag(sink: string, shard: string, lagMs: number): void {
    this.lag.observe({ sink, shard }, Math.max(0, lagMs));
  }

  private syncPeerCounters(
    providers: Iterable<PeerHealthSnapshotProvider>,
    counters: { assignments: Counter; heartbeats: Counter; disconnects: Counter },
  ): void {
    for (const provider of providers) {
      if (!hasStats(provider)) continue;
      let now: PeerLeaseHealthStats;
      try {
        now = provider.stats();
      } catch {
        continue;
      }
      const before = this.lastPeerStats.get(provider) ?? { assignments: 0, heartbeats: 0, disconnects: 0 };
      counters.assignments.inc(delta(before.assignments, now.assignments));
      counters.heartbeats.inc(delta(before.heartbeats, now.heartbeats));
      counters.disconnects.inc(delta(before.disconnects, now.disconnects));
      this.lastPeerStats.set(provider, now);
    }
  }
}

interface PeerTotals {
  healthy: number;
  unhealthy: number;
  pendingReassignments: number;
}

function peerTotals(providers: Iterable<PeerHealthSnapshotProvider>): PeerTotals {
  const totals: PeerTotals = { healthy: 0, unhealthy: 0, pendingReassignments: 0 };
  for (const provider of providers) {
    let snapshots: ReturnType<PeerHealthSnapshotProvider["snapshot"]>;
    try {
      snapshots = provider.snapshot();
    } catch {
      continue;
    }
    for (const peer of snapshots) {
      if (peer.isHealthy) totals.healthy++;
      else totals.unhealthy++;
      totals.pendingReassignments += peer.pendingReassignments;
    }
  }
  return totals;
}

// A counter that went backwards was reset (a new tracker behind the same provider): count its new total.
function delta(before: number, now: number): number {
  if (!Number.isFinite(now) || now < 0) return 0;
  return now >= before ? now - before : now;
}

function readStats(stats: () => ResourceLeaseQueueStats): ResourceLeaseQueueStats | undefined {
  try {
    return stats();
  } catch {
    return undefined;
  }
}

/** @internal */
export function checkBuckets(option: string, buckets: readonly number[] | undefined): void {
  if (buckets === undefined) return;
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => !Number.isFinite(b) || b <= 0)) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a non-empty array of positive numbers.`);
  }
}
