import type { ReplicationHubSourceStatus } from "./hub-source.js";

/** Options of {@link renderHubMetrics}. */
export interface RenderHubMetricsOptions {
  /** Whether the hub is serving (`omnirelay_replication_hub_up`). @defaultValue true */
  readonly serving?: boolean;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

const families: ReadonlyArray<{
  name: string;
  type: "gauge" | "counter";
  help: string;
  value: (s: ReplicationHubSourceStatus) => number;
}> = [
  {
    name: "omnirelay_replication_hub_last_sequence",
    type: "gauge",
    help: "Last sequence number the hub stored and acknowledged, per source (its checkpoint).",
    value: (s) => s.lastSequence,
  },
  {
    name: "omnirelay_replication_hub_head_sequence",
    type: "gauge",
    help: "Highest sequence number the source reported producing.",
    value: (s) => s.headSequence,
  },
  {
    name: "omnirelay_replication_hub_lag_events",
    type: "gauge",
    help: "Events the source has produced that the hub has not stored yet (head - last).",
    value: (s) => s.lag,
  },
  {
    name: "omnirelay_replication_hub_connected",
    type: "gauge",
    help: "1 while the source has an open publish stream.",
    value: (s) => (s.connected ? 1 : 0),
  },
  {
    name: "omnirelay_replication_hub_stored_events_total",
    type: "counter",
    help: "Events stored since the hub started.",
    value: (s) => s.storedEvents,
  },
  {
    name: "omnirelay_replication_hub_duplicate_events_total",
    type: "counter",
    help: "Re-sent events acknowledged without storing them again.",
    value: (s) => s.duplicateEvents,
  },
  {
    name: "omnirelay_replication_hub_sink_failures_total",
    type: "counter",
    help: "Sink deliveries that failed.",
    value: (s) => s.sinkFailures,
  },
];

/**
 * Renders hub source statuses as Prometheus text exposition (format 0.0.4). Labels are `node_id` and `shard`:
 * one series per source, bounded by the number of dispatchers.
 */
export function renderHubMetrics(
  sources: readonly ReplicationHubSourceStatus[],
  options: RenderHubMetricsOptions = {},
): string {
  const lines = [
    "# HELP omnirelay_replication_hub_up 1 while the hub serves.",
    "# TYPE omnirelay_replication_hub_up gauge",
    `omnirelay_replication_hub_up ${options.serving === false ? 0 : 1}`,
    "# HELP omnirelay_replication_hub_sources Sources the hub has a log for.",
    "# TYPE omnirelay_replication_hub_sources gauge",
    `omnirelay_replication_hub_sources ${sources.length}`,
  ];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const s of sources) {
      lines.push(
        `${family.name}{node_id="${escapeLabel(s.nodeId)}",shard="${escapeLabel(s.shard)}"} ${family.value(s)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
