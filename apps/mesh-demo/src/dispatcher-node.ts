import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  Dispatcher,
  HttpInbound,
  type Logger,
  OmniRelayError,
  type RequestMeta,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import {
  BackpressureAwareRateLimiter,
  ConcurrencyLimiter,
  RateLimitingBackpressureListener,
  TokenBucketLimiter,
} from "@omnirelay/core/backpressure";
import { DeterministicResourceLeaseCoordinator } from "@omnirelay/core/deterministic";
import { RateLimitingMiddleware } from "@omnirelay/core/middleware";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { ResourceLeaseControlPlane, type TrackedReplicationSink } from "@omnirelay/diagnostics";
import {
  type DurableResourceLeaseQueue,
  openDurableResourceLeaseQueue,
  SqliteDeterministicStateStore,
} from "@omnirelay/replicator-sqlite";
import { authMiddleware, bindingOptions, MESH_ADMIN, type MeshAuth } from "./auth.js";
import { CatalogState, parseCatalogOperation } from "./catalog.js";
import { type MeshDemoConfig, shardNamespace } from "./config.js";
import { EventFeed } from "./event-feed.js";
import { LogFollower } from "./follower.js";
import { openGrpcInbound } from "./grpc.js";
import { MESH_QUEUE_KEYS } from "./seeder.js";
import { CallerTransports } from "./transports.js";

/** One shard of the dispatcher: its durable queue, component and log follower. */
export interface MeshShard {
  readonly shard: string;
  readonly namespace: string;
  readonly durable: DurableResourceLeaseQueue;
  readonly component: ResourceLeaseDispatcherComponent;
  readonly follower: LogFollower;
  readonly limiter: BackpressureAwareRateLimiter<RequestMeta>;
  /** The follower's sink as the control plane tracks it (checkpoint, lag). */
  readonly tracked: TrackedReplicationSink;
}

/** The dispatcher role: everything the diagnostics role reads. */
export interface DispatcherNode {
  readonly url: string;
  /** Where the queue is also served over gRPC (`http://host:port`), when `--grpc-url` asked for it. */
  readonly grpcUrl?: string;
  readonly dispatcher: Dispatcher;
  readonly controlPlane: ResourceLeaseControlPlane;
  readonly tracker: PeerLeaseHealthTracker;
  readonly shards: readonly MeshShard[];
  readonly catalog: CatalogState;
  readonly feed: EventFeed;
  /** The transport each caller (worker peer id, seeder) uses. */
  readonly transports: CallerTransports;
  /** `jwt` when every RPC needs a token (`--auth-secret-file`), else `off`. */
  readonly auth: "jwt" | "off";
  close(): Promise<void>;
}

/** Procedure the workers call to apply an operation to the mesh's catalog state. */
export const CATALOG_APPLY = "demo.catalog::apply";

/** Registers `demo.catalog::apply`: the workers apply each catalog operation to `catalog` through it. */
export function registerCatalogApply(dispatcher: Dispatcher, catalog: CatalogState): void {
  dispatcher.registerJson(CATALOG_APPLY, async (body, meta) => {
    let operation: ReturnType<typeof parseCatalogOperation>;
    try {
      operation = parseCatalogOperation(body.operation);
    } catch (error) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: "mesh.demo.catalog.invalid",
        message: (error as Error).message,
      });
    }
    const appliedBy = typeof body.peerId === "string" ? body.peerId : (meta.caller ?? "unknown");
    return catalog.apply(operation, appliedBy);
  });
}

/**
 * Starts the dispatcher: per shard a SQLite-durable queue served as `{namespace}::*` with dispatch keys
 * `<tenant>/<catalog>` (one active lease per key, fair sharing across keys: {@link MESH_QUEUE_KEYS}),
 * backpressure (high/low watermarks) driving a rate limiter that really throttles enqueues, a health tracker fed by
 * the queue events and lease polls, and a follower that records every committed event in the SQLite deterministic
 * store; plus `demo.catalog::apply` and the control plane (also mounted on the RPC port). With `--grpc-url` the queue
 * procedures are served over gRPC too, through the same middleware (auth included). With a shared secret every
 * RPC needs a valid JWT, and the control plane's reads need one too (its toggles need `mesh-admin`).
 *
 * The dispatcher owns every part: `dispatcher.start()` catches the followers up, then opens the RPC port;
 * `dispatcher.stop()` drains the port, then closes the parts in the reverse of the order they were added — per shard
 * the follower, the queue, its log; then the store, then the control plane.
 */
export async function startDispatcherNode(config: MeshDemoConfig & MeshAuth, logger: Logger): Promise<DispatcherNode> {
  mkdirSync(config.dataDir, { recursive: true });
  const secret = config.authSecret;
  const controlPlane = new ResourceLeaseControlPlane({
    logger,
    collectDefaultMetrics: true,
    ...(secret ? { auth: { principalBinding: bindingOptions(secret), admins: [MESH_ADMIN] } } : {}),
  });
  const transports = new CallerTransports((meta) => meta.procedure !== CATALOG_APPLY);
  const dispatcher = new Dispatcher({
    service: "resourcelease-mesh-demo",
    // Metrics first, so refused calls are counted (status="unauthenticated") too; transports after auth, so only
    // callers that got in are listed.
    inboundMiddleware: [controlPlane.rpcMetricsMiddleware(), ...(secret ? [authMiddleware(secret)] : []), transports],
    logger,
  }).addComponent(controlPlane);
  try {
    const tracker = new PeerLeaseHealthTracker({
      gracePeriodMs: config.healthGraceMs,
      logger,
      onDisconnect: (alert) => logger.warn({ peerId: alert.peerId, reason: alert.reason }, "Peer disconnected."),
    });
    controlPlane.addHealthProvider(tracker);
    const feed = new EventFeed(200);
    // The deterministic store is its own file: the event logs are locked by their replicators. Retention keeps the
    // data directory bounded: each log keeps 2,000 events behind its newest snapshot, and the store keeps at most a day
    // (the seed's "SQLite nodes keep 24h of events") and at most the newest 20,000 per-event records and catalog
    // claims (about 10,000 events: far more than a restarted follower replays, one batch of 500).
    const store = await SqliteDeterministicStateStore.open({
      path: join(config.dataDir, "deterministic.db"),
      retention: { maxAgeMs: 86_400_000, maxRecords: 20_000, keyPrefixes: ["catalog.op/"] },
      logger,
    });
    dispatcher.addComponent(store);
    controlPlane.addDeterministicStore({ store: "deterministic", records: () => store.count() });
    const catalog = await CatalogState.load(store);
    const shards: MeshShard[] = [];
    for (const shard of config.shards) {
      const namespace = shardNamespace(config, shard);
      // Under backpressure, enqueues are throttled to a trickle; leases, heartbeats and completions never are.
      const enqueueThrottle = new TokenBucketLimiter({ tokensPerSecond: 2, burst: 2 });
      const limiter = new BackpressureAwareRateLimiter<RequestMeta>({
        normalLimiter: new ConcurrencyLimiter({ permits: 128 }),
        backpressureSelector: (meta) =>
          meta.procedure.toLowerCase().endsWith("::enqueue") ? enqueueThrottle : undefined,
        logger,
      });
      const durable = await openDurableResourceLeaseQueue({
        path: join(config.dataDir, `events-${shard}.db`),
        snapshotEveryEvents: 2_000,
        replicatorOptions: { retainEventsAfterSnapshot: 2_000 },
        queueOptions: {
          name: namespace,
          capacity: 4_096,
          leaseDurationMs: config.leaseDurationMs,
          keys: MESH_QUEUE_KEYS,
          retryBackoff: { initialDelayMs: 250, maxDelayMs: 5_000 },
          deadLetters: { maxCount: config.deadLetterMax },
          backpressure: {
            highWatermark: config.highWatermark,
            lowWatermark: config.lowWatermark,
            listeners: [new RateLimitingBackpressureListener(limiter, { logger })],
          },
          observers: [
            (event: ResourceLeaseReplicationEvent) => tracker.observe(event),
            controlPlane.eventObserver(namespace),
            (event: ResourceLeaseReplicationEvent) => feed.push(namespace, event),
          ],
          logger,
        },
      });
      dispatcher.addComponent(durable);
      const coordinator = new DeterministicResourceLeaseCoordinator({
        stateStore: store,
        changeId: `resourcelease-mesh-demo.${namespace}`,
      });
      const tracked = controlPlane.trackReplicationSink({
        sink: "deterministic",
        shard: namespace,
        inner: coordinator,
      });
      const component = new ResourceLeaseDispatcherComponent(dispatcher, {
        namespace,
        queue: durable.queue,
        healthTracker: tracker,
        middleware: [new RateLimitingMiddleware({ selector: limiter, logger })],
        logger,
      });
      const follower = new LogFollower({
        replicator: durable.replicator,
        sink: tracked,
        checkpointStore: store,
        checkpointKey: `mesh-demo.follower/${namespace}`,
        logger,
      });
      dispatcher.addComponent(follower);
      shards.push({ shard, namespace, durable, component, follower, limiter, tracked });
      controlPlane.addComponent(component);
    }
    registerCatalogApply(dispatcher, catalog);
    const rpc = new URL(config.rpcUrl);
    // A worker whose link went down is cut off within two pings, well inside the health grace.
    const pingIntervalMs = Math.max(100, Math.min(10_000, Math.floor(config.healthGraceMs / 2)));
    const inbound = new HttpInbound({
      dispatcher,
      host: rpc.hostname,
      port: Number(rpc.port || 80),
      readiness: [controlPlane.readinessCheck()],
      fallback: controlPlane.handler(),
      logger,
      sessions: { pingIntervalMs },
    });
    const grpc =
      config.grpcUrl === undefined
        ? undefined
        : await openGrpcInbound({ dispatcher, url: config.grpcUrl, logger, pingIntervalMs });
    await dispatcher.start();
    for (const { namespace, durable } of shards) {
      logger.info(
        { shard: namespace, replayedEvents: durable.replayedEvents, pending: durable.queue.stats().pendingCount },
        "Shard recovered from its SQLite log.",
      );
    }
    return {
      url: inbound.url,
      ...(grpc ? { grpcUrl: grpc.url() } : {}),
      dispatcher,
      controlPlane,
      tracker,
      shards,
      catalog,
      feed,
      transports,
      auth: secret ? "jwt" : "off",
      close: () => dispatcher.stop({ graceMs: 2_000 }),
    };
  } catch (error) {
    // Whatever was opened before the failure is closed (a failed start() has done so already).
    await dispatcher.stop({ graceMs: 0 }).catch(() => undefined);
    throw error;
  }
}
