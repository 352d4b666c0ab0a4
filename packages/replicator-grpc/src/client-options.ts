import type { ChannelCredentials } from "@grpc/grpc-js";
import type { Clock, Logger, ResourceLeaseEventLog } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import { checkClientTls, type ReplicationHubClientTlsOptions } from "./credentials.js";
import type { GrpcReplicatorOverflow } from "./outbox.js";
import { checkSourceId } from "./source.js";

/** Options of a {@link GrpcResourceLeaseReplicator}. */
export interface GrpcResourceLeaseReplicatorOptions {
  /** Hub addresses (`host:port`). Required, at least one. */
  readonly hubs: readonly string[];
  /** This dispatcher's node id. Required: 1–128 characters of `[A-Za-z0-9._-]`. */
  readonly nodeId: string;
  /** The shard whose events this replicator carries. @defaultValue '' (unsharded) */
  readonly shard?: string;
  /** TLS towards the hubs; without it, plaintext. */
  readonly tls?: ReplicationHubClientTlsOptions;
  /** Ready-made channel credentials; override `tls` (its `bearerToken` too). */
  readonly credentials?: ChannelCredentials;
  /** How the hub for the next connection is picked among healthy hubs. @defaultValue 'round-robin' */
  readonly chooser?: "round-robin" | "fewest-pending";
  /** Unacknowledged events the outbox holds before `overflow` applies. @defaultValue 10000 */
  readonly maxOutboxEvents?: number;
  /**
   * `'block'`: a publish that does not fit waits (in order) until acknowledgements make room — backpressure on the
   * dispatcher. `'lag'`: it is accepted, `lag().lagging` turns true, and publishes fail with resource-exhausted only at
   * `hardCapEvents`. @defaultValue 'block'
   */
  readonly overflow?: GrpcReplicatorOverflow;
  /** `'lag'` mode's hard cap on unacknowledged events. @defaultValue 10 × maxOutboxEvents */
  readonly hardCapEvents?: number;
  /** Most events per batch message. @defaultValue 256 */
  readonly maxBatchEvents?: number;
  /** Deadline of the hello: the hub must answer with its checkpoint within it. @defaultValue 5000 */
  readonly connectTimeoutMs?: number;
  /** Deadline of sent events: without an acknowledgement for this long the stream is dropped and reopened. @defaultValue 5000 */
  readonly ackTimeoutMs?: number;
  /** First reconnect delay; doubles per failure, with jitter. @defaultValue 100 */
  readonly reconnectInitialDelayMs?: number;
  /** Longest reconnect delay. @defaultValue 2000 */
  readonly reconnectMaxDelayMs?: number;
  /** How long a hub that failed is skipped while another is healthy. @defaultValue 5000 */
  readonly unhealthyCooldownMs?: number;
  /**
   * The dispatcher's local log. When the hub's checkpoint is behind the oldest event in the outbox (a new hub, a hub
   * restored from an old backup, events published before this replicator started), the missing range is read from
   * here. Without it such a gap cannot be filled and the stream fails with `resourcelease.replication.grpc.gap`.
   * @defaultValue none
   */
  readonly backfill?: ResourceLeaseEventLog;
  /** @defaultValue systemClock */
  readonly clock?: Clock;
  /** Random source in [0, 1) for jitter. @defaultValue Math.random */
  readonly random?: () => number;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/** Options with defaults. Internal. */
export interface ResolvedClientOptions {
  readonly hubs: readonly string[];
  readonly nodeId: string;
  readonly shard: string;
  readonly maxOutboxEvents: number;
  readonly hardCapEvents: number;
  readonly overflow: GrpcReplicatorOverflow;
  readonly maxBatchEvents: number;
  readonly connectTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly unhealthyCooldownMs: number;
}

const positive = (value: unknown, option: string, fallback: number): number =>
  integerOption(option, value, { min: 1, fallback });

/**
 * Validates the options. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`).
 */
export function resolveClientOptions(o: GrpcResourceLeaseReplicatorOptions): ResolvedClientOptions {
  if (!Array.isArray(o?.hubs) || o.hubs.length === 0)
    throw OmniRelayError.invalidOption("hubs", "Option 'hubs' needs an address.");
  for (const hub of o.hubs) {
    if (typeof hub !== "string" || !/^.+:\d{1,5}$/.test(hub.trim())) {
      throw OmniRelayError.invalidOption("hubs", `Hub address '${String(hub)}' is not host:port.`);
    }
  }
  try {
    checkSourceId({ nodeId: o.nodeId, shard: o.shard ?? "" });
  } catch (error) {
    const field = (error as { metadata?: Record<string, string> }).metadata?.field ?? "nodeId";
    throw OmniRelayError.invalidOption(
      field,
      "nodeId and shard are 1-128 characters of [A-Za-z0-9._-] (shard may be empty).",
    );
  }
  checkClientTls(o.tls);
  const overflow = o.overflow ?? "block";
  if (overflow !== "block" && overflow !== "lag")
    throw OmniRelayError.invalidOption("overflow", "overflow is 'block' or 'lag'.");
  if (o.chooser !== undefined && o.chooser !== "round-robin" && o.chooser !== "fewest-pending") {
    throw OmniRelayError.invalidOption("chooser", "chooser is 'round-robin' or 'fewest-pending'.");
  }
  const maxOutboxEvents = positive(o.maxOutboxEvents, "maxOutboxEvents", 10_000);
  const hardCapEvents = positive(o.hardCapEvents, "hardCapEvents", maxOutboxEvents * 10);
  if (hardCapEvents < maxOutboxEvents)
    throw OmniRelayError.invalidOption("hardCapEvents", "hardCapEvents must be >= maxOutboxEvents.");
  const reconnectInitialDelayMs = positive(o.reconnectInitialDelayMs, "reconnectInitialDelayMs", 100);
  const reconnectMaxDelayMs = positive(o.reconnectMaxDelayMs, "reconnectMaxDelayMs", 2000);
  if (reconnectMaxDelayMs < reconnectInitialDelayMs) {
    throw OmniRelayError.invalidOption(
      "reconnectMaxDelayMs",
      "reconnectMaxDelayMs must be >= reconnectInitialDelayMs.",
    );
  }
  return {
    hubs: o.hubs.map((h) => h.trim()),
    nodeId: o.nodeId,
    shard: o.shard ?? "",
    maxOutboxEvents,
    hardCapEvents,
    overflow,
    maxBatchEvents: positive(o.maxBatchEvents, "maxBatchEvents", 256),
    connectTimeoutMs: positive(o.connectTimeoutMs, "connectTimeoutMs", 5000),
    ackTimeoutMs: positive(o.ackTimeoutMs, "ackTimeoutMs", 5000),
    reconnectInitialDelayMs,
    reconnectMaxDelayMs,
    unhealthyCooldownMs: positive(o.unhealthyCooldownMs, "unhealthyCooldownMs", 5000),
  };
}
