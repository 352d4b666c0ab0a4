import type { ReplicationHubDenialReason, ReplicationHubRpc } from "./hub-auth.js";
import type { ReplicationHubSourceStatus } from "./hub-source.js";

/** Calls a hub refused before they reached a source, for one RPC and reason. */
export interface ReplicationHubDeniedCalls {
  /** `publish`, `subscribe`, `checkpoint` or `list_sources`. */
  readonly rpc: ReplicationHubRpc;
  /** `unauthenticated` (no or a bad credential) or `permission_denied` (an identity naming a node id it may not use). */
  readonly reason: ReplicationHubDenialReason;
  /** Refusals since the hub started. */
  readonly count: number;
}

/** Options of {@link renderHubMetrics}. */
export interface RenderHubMetricsOptions {
  /** Whether the hub is serving (`omnirelay_replication_hub_up`). @defaultValue true */
  readonly serving?: boolean;
  /**
   * Refused calls, rendered as `omnirelay_replication_hub_denied_calls_total{rpc,reason}` (hub-wide: the node id a
   * refused caller named is not a label, so an attacker cannot grow the series). @defaultValue [] (family omitted)
   */
  readonly deniedCalls?: readonly ReplicationHubDeniedCalls[];
  /**
   * Failed sources the hub forgot to stay within its `maxFailedSources`, rendered as the hub-wide counter
   * `omnirelay_replication_hub_failed_sources_evicted_total`. @defaultValue undefined (family omitted)
   */
  readonly failedSourcesEvicted?: number;
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
    name: "omnirelay_replication_hub_conflicts_total",
    type: "counter",
    help: "Re-sent events that differed from the stored event at their sequence number (refused; alert on any).",
    value: (s) => s.conflicts,
  },
  {
    name: "omnirelay_replication_hub_busy_refusals_total",
    type: "counter",
    help: "Publish streams refused because the source already had a live one.",
    value: (s) => s.busyRefusals,
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
 * one series per source, bounded by the number of dispatchers. A source whose log failed to open has no values to
 * report: it appears only in `omnirelay_replication_hub_source_failed` (1, with the open error's `code` and its
 * cause's `cause_code`, both from the fixed set of error codes), every open source there with 0.
 */
export function renderHubMetrics(
  sources: readonly ReplicationHubSourceStatus[],
  options: RenderHubMetricsOptions = {},
): string {
  const lines = [
    "# HELP omnirelay_replication_hub_up 1 while the hub serves.",
    "# TYPE omnirelay_replication_hub_up gauge",
    `omnirelay_replication_hub_up ${options.serving === false ? 0 : 1}`,
    "# HELP omnirelay_replication_hub_sources Sources the hub knows: open logs and logs that failed to open.",
    "# TYPE omnirelay_replication_hub_sources gauge",
    `omnirelay_replication_hub_sources ${sources.length}`,
  ];
  const open = sources.filter((s) => !s.failed);
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const s of open) {
      lines.push(
        `${family.name}{node_id="${escapeLabel(s.nodeId)}",shard="${escapeLabel(s.shard)}"} ${family.value(s)}`,
      );
    }
  }
  lines.push(
    "# HELP omnirelay_replication_hub_source_failed 1 while the source's log cannot be opened (its calls fail with the code label; the other sources are served).",
    "# TYPE omnirelay_replication_hub_source_failed gauge",
  );
  for (const s of sources) {
    const labels = `node_id="${escapeLabel(s.nodeId)}",shard="${escapeLabel(s.shard)}"`;
    const failed = s.failed
      ? `,code="${escapeLabel(s.failed.code)}",cause_code="${escapeLabel(s.failed.causeCode ?? "")}"`
      : "";
    lines.push(`omnirelay_replication_hub_source_failed{${labels}${failed}} ${s.failed ? 1 : 0}`);
  }
  if (options.failedSourcesEvicted !== undefined) {
    lines.push(
      "# HELP omnirelay_replication_hub_failed_sources_evicted_total Failed sources no longer listed one by one because the hub keeps at most maxFailedSources of them.",
      "# TYPE omnirelay_replication_hub_failed_sources_evicted_total counter",
      `omnirelay_replication_hub_failed_sources_evicted_total ${options.failedSourcesEvicted}`,
    );
  }
  const denied = options.deniedCalls ?? [];
  if (denied.length > 0) {
    lines.push(
      "# HELP omnirelay_replication_hub_denied_calls_total Calls refused before reaching a source: no or a bad credential, or an identity naming a node id it may not use.",
      "# TYPE omnirelay_replication_hub_denied_calls_total counter",
    );
    for (const d of denied) {
      lines.push(
        `omnirelay_replication_hub_denied_calls_total{rpc="${escapeLabel(d.rpc)}",reason="${escapeLabel(d.reason)}"} ${d.count}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
