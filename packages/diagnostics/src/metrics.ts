import type { Clock, ResourceLeaseQueueStats, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { ResourceLeaseEventTypes } from "@omnirelay/core";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ReplicationCheckpointRow } from "./routes.js";
import { defaultDurationBucketsMs, OTHER_LABEL } from "./rpc-metrics.js";

/** A registered shard as the metrics read it at scrape time. */
export interface ShardMetricsSource {
  readonly namespace: string;
  readonly stats: () => ResourceLeaseQueueStats;
  /** Whether the shard's backpressure gate is active now (`undefined`: no signal yet). */
  readonly backpressureActive: () => boolean | undefined;
  /** When the shard was registered, ms since the epoch (the "last event" until its first event). */
  readonly registeredAt: number;
}

/** A replication outbox (events handed to a sink or hub and not acknowledged yet). */
export interface ReplicationOutboxSource {
  readonly sink: string;
  readonly shard: string;
  readonly pendingEvents: () => number;
}

/** A deterministic state store whose size is exported. */
export interface DeterministicStoreSource {
  readonly store: string;
  readonly records: () => number | Promise<number>;
}

/** What {@link ResourceLeaseMetrics} reads at scrape time. */
export interface ResourceLeaseMetricsSources {
  readonly shards: () => Iterable<ShardMetricsSource>;
  readonly checkpoints: () => Iterable<ReplicationCheckpointRow>;
  readonly outboxes: () => Iterable<ReplicationOutboxSource>;
  readonly stores: () => Iterable<DeterministicStoreSource>;
}

/** Settings of {@link ResourceLeaseMetrics}. */
export interface ResourceLeaseMetricsSettings {
  readonly clock: Clock;
  readonly lagBucketsMs?: readonly number[] | undefined;
}

const eventTypes = new Set<string>(Object.keys(ResourceLeaseEventTypes));

type Labels<T extends string> = Partial<Record<T, string | number>>;

/** A gauge whose series are rebuilt from `read` at every scrape (series of vanished label sets disappear). */
function scrapeGauge<T extends string>(
  spec: { name: string; help: string; labelNames: readonly T[]; registry: Registry },
  read: () => Iterable<readonly [Labels<T>, number]> | Promise<Iterable<readonly [Labels<T>, number]>>,
): void {
  const gauge: Gauge<T> = new Gauge<T>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [spec.registry],
    collect: async () => {
      const rows = await read();
      gauge.reset();
      for (const [labels, value] of rows) if (Number.isFinite(value)) gauge.set(labels, value);
    },
  });
}

function safe<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/**
 * The queue, backpressure, replication and deterministic-store instruments of DESIGN §7 in one registry (internal
 * to the control plane). Label values are shard and sink names the application registered, the fixed event-type
 * enum and `replay` `true`/`false`: bounded by configuration, never by traffic.
 */
export class ResourceLeaseMetrics {
  private readonly transitions: Counter<"shard" | "state">;
  private readonly events: Counter<"shard" | "event_type">;
  private readonly lateCompletions: Counter<"shard">;
  private readonly lag: Histogram<"sink" | "shard">;
  private readonly applied: Counter<"sink" | "shard" | "replay">;
  private readonly failures: Counter<"sink" | "shard">;
  private readonly retries: Counter<"sink" | "shard">;
  private readonly lastEventAt = new Map<string, number>();
  private readonly clock: Clock;

  constructor(registry: Registry, sources: ResourceLeaseMetricsSources, settings: ResourceLeaseMetricsSettings) {
    this.clock = settings.clock;
    const registers = [registry];
    const perShard = (read: (s: ResourceLeaseQueueStats) => number) => () =>
      [...sources.shards()].flatMap((shard) => {
        const stats = safe(shard.stats);
        return stats ? [[{ shard: shard.namespace }, read(stats)] as const] : [];
      });
    const shardGauge = (name: string, help: string, read: (s: ResourceLeaseQueueStats) => number): void =>
      scrapeGauge({ name, help, labelNames: ["shard"], registry }, perShard(read));
    shardGauge(
      "omnirelay_resourcelease_pending",
      "Items waiting for a lease (including those in a retry backoff), per shard.",
      (s) => s.pendingCount,
    );
    shardGauge("omnirelay_resourcelease_active", "Active leases, per shard.", (s) => s.activeLeaseCount);
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
    shardGauge(
      "omnirelay_resourcelease_replication_queue_sequence",
      "Sequence number of the last event the shard's queue produced.",
      (s) => s.lastEventSequence,
    );
    scrapeGauge(
      {
        name: "omnirelay_resourcelease_backpressure_active",
        help: "1 while the shard's backpressure gate is active, else 0.",
        labelNames: ["shard"],
        registry,
      },
      () => [...sources.shards()].map((s) => [{ shard: s.namespace }, safe(s.backpressureActive) ? 1 : 0] as const),
    );
    scrapeGauge(
      {
        name: "omnirelay_resourcelease_replication_last_event_timestamp_seconds",
        help: "When the shard's queue last produced a replication event (its registration time before the first), Unix seconds.",
        labelNames: ["shard"],
        registry,
      },
      () =>
        [...sources.shards()].map((s) => {
          const at = Math.max(this.lastEventAt.get(s.namespace) ?? 0, s.registeredAt);
          return [{ shard: s.namespace }, at / 1000] as const;
        }),
    );
    this.registerCheckpointGauges(registry, sources);
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
    this.lateCompletions = new Counter({
      name: "omnirelay_resourcelease_late_completions_total",
      help: "Completions accepted from the holder of an expired lease during its lock-delay (queue option lockDelayMs), per shard.",
      labelNames: ["shard"],
      registers,
    });
    this.lag = new Histogram({
      name: "omnirelay_resourcelease_replication_lag",
      help: "Time from a queue mutation to its application by a replication sink, in milliseconds.",
      labelNames: ["sink", "shard"],
      buckets: [...(settings.lagBucketsMs ?? defaultDurationBucketsMs)],
      registers,
    });
    this.applied = new Counter({
      name: "omnirelay_resourcelease_replication_applied_total",
      help: "Events a tracked sink handled: replay=true when the sink had applied (recorded) the event before.",
      labelNames: ["sink", "shard", "replay"],
      registers,
    });
    this.failures = new Counter({
      name: "omnirelay_resourcelease_replication_sink_failures_total",
      help: "Applies of an event that a tracked sink rejected.",
      labelNames: ["sink", "shard"],
      registers,
    });
    this.retries = new Counter({
      name: "omnirelay_resourcelease_replication_sink_retries_total",
      help: "Applies of an event that the same tracked sink had rejected before.",
      labelNames: ["sink", "shard"],
      registers,
    });
  }

  /** Creates the series of a tracked sink at 0, so dashboards and alerts see them before the first event. */
  trackSink(sink: string, shard: string): void {
    this.applied.inc({ sink, shard, replay: "false" }, 0);
    this.applied.inc({ sink, shard, replay: "true" }, 0);
    this.failures.inc({ sink, shard }, 0);
    this.retries.inc({ sink, shard }, 0);
  }

  /** Counts one backpressure transition of a shard. */
  backpressureTransition(shard: string, isActive: boolean): void {
    this.transitions.inc({ shard, state: isActive ? "active" : "inactive" });
  }

  /** Counts one replication event of a shard (unknown event types as `_other`) and stamps its time. */
  replicationEvent(shard: string, event: Pick<ResourceLeaseReplicationEvent, "eventType" | "metadata">): void {
    const { eventType } = event;
    this.events.inc({ shard, event_type: eventTypes.has(eventType) ? eventType : OTHER_LABEL });
    if (eventType === "Completed" && event.metadata["lease.late"] === "lock_delay") this.lateCompletions.inc({ shard });
    this.lastEventAt.set(shard, this.clock.now());
  }

  /** Records one event a tracked sink applied: its lag (ms) and whether it was a replay. */
  sinkApplied(sink: string, shard: string, outcome: { readonly lagMs: number; readonly replay: boolean }): void {
    this.applied.inc({ sink, shard, replay: outcome.replay ? "true" : "false" });
    if (!outcome.replay) this.lag.observe({ sink, shard }, Math.max(0, outcome.lagMs));
  }

  /** Records one apply a tracked sink rejected. */
  sinkFailed(sink: string, shard: string): void {
    this.failures.inc({ sink, shard });
  }

  /** Records one apply of an event the sink had rejected before. */
  sinkRetried(sink: string, shard: string): void {
    this.retries.inc({ sink, shard });
  }

  private registerCheckpointGauges(registry: Registry, sources: ResourceLeaseMetricsSources): void {
    const sinkLabels = ["sink", "shard"] as const;
    scrapeGauge(
      {
        name: "omnirelay_resourcelease_replication_checkpoint_sequence",
        help: "Sequence number of the last event a replication sink applied (its checkpoint).",
        labelNames: sinkLabels,
        registry,
      },
      () =>
        [...sources.checkpoints()].flatMap((row) =>
          row.lastSequence === undefined ? [] : [[{ sink: row.sink, shard: row.shard }, row.lastSequence] as const],
        ),
    );
    scrapeGauge(
      {
        name: "omnirelay_resourcelease_replication_behind_events",
        help: "Events the shard's queue produced that a replication sink has not applied yet.",
        labelNames: sinkLabels,
        registry,
      },
      () =>
        [...sources.checkpoints()].flatMap((row) =>
          row.behindEvents === undefined ? [] : [[{ sink: row.sink, shard: row.shard }, row.behindEvents] as const],
        ),
    );
    scrapeGauge(
      {
        name: "omnirelay_resourcelease_replication_outbox_events",
        help: "Events handed to a replicator or hub client and not acknowledged yet (its outbox depth).",
        labelNames: sinkLabels,
        registry,
      },
      () =>
        [...sources.outboxes()].flatMap((o) => {
          const pending = safe(o.pendingEvents);
          return pending === undefined ? [] : [[{ sink: o.sink, shard: o.shard }, pending] as const];
        }),
    );
    scrapeGauge(
      {
        name: "omnirelay_deterministic_store_records",
        help: "Records a deterministic state store holds (version gates, effects and other keys).",
        labelNames: ["store"],
        registry,
      },
      async () => {
        const rows: (readonly [Labels<"store">, number])[] = [];
        for (const s of sources.stores()) {
          try {
            rows.push([{ store: s.store }, await s.records()]);
          } catch {
            // A store that cannot count (closed, failing) has no sample this scrape.
          }
        }
        return rows;
      },
    );
  }
}
