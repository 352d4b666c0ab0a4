import { Dispatcher, HttpInbound, type Logger, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator } from "@omnirelay/core/deterministic";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { ResourceLeaseControlPlane } from "@omnirelay/diagnostics";
import type {
  JetStreamDeterministicStateStore,
  JetStreamShardOwnership,
  JetStreamShardPlacement,
  JetStreamSyncSetting,
  OwnedJetStreamResourceLeaseQueue,
} from "@omnirelay/replicator-jetstream";
import { authMiddleware, bindingOptions, MESH_ADMIN, type MeshAuth } from "./auth.js";
import { CatalogState } from "./catalog.js";
import { type MeshDemoConfig, shardNamespace } from "./config.js";
import { registerCatalogApply } from "./dispatcher-node.js";
import { EventFeed } from "./event-feed.js";
import { LogFollower } from "./follower.js";
import { MeshOwnershipMetrics } from "./mesh-metrics.js";
import { type OwnershipChange, placementEventRecorder } from "./ownership-events.js";
import { MESH_QUEUE_KEYS } from "./seeder.js";
import { ShardSlots } from "./shard-slots.js";
import { CallerTransports } from "./transports.js";

export type { OwnershipChange } from "./ownership-events.js";

/** A shard this node serves: its owned queue and what it counted since it took the shard. */
export interface ServedMeshShard {
  readonly shard: string;
  readonly namespace: string;
  readonly owned: OwnedJetStreamResourceLeaseQueue;
  readonly since: number;
  readonly counts: { completed: number };
  /** Records the shard's events in the shared deterministic store. */
  readonly follower: LogFollower;
  close(): Promise<void>;
}

/** Whether the node reached JetStream at its last probe (every second), and when the server fsyncs. */
export interface JetStreamReachability {
  reachable: boolean;
  checkedAt: string;
  latencyMs?: number;
  error?: string;
  /** The server's sync setting, as the first shard log this node opened described it. */
  sync?: JetStreamSyncSetting;
}

/** A dispatcher node of the JetStream mode (`--log jetstream://…`). */
export interface JetStreamMeshNode {
  readonly nodeId: string;
  readonly url: string;
  readonly servers: readonly string[];
  readonly names: JetStreamNames;
  /** Shard → queue namespace. */
  readonly namespaces: ReadonlyMap<string, string>;
  readonly dispatcher: Dispatcher;
  readonly controlPlane: ResourceLeaseControlPlane;
  readonly tracker: PeerLeaseHealthTracker;
  readonly catalog: CatalogState;
  readonly feed: EventFeed;
  readonly ownership: JetStreamShardOwnership;
  readonly placement: JetStreamShardPlacement<ServedMeshShard>;
  readonly store: JetStreamDeterministicStateStore;
  readonly metrics: MeshOwnershipMetrics;
  readonly jetstream: JetStreamReachability;
  /** The newest ownership changes of this node (at most 50). */
  readonly changes: readonly OwnershipChange[];
  close(): Promise<void>;
}

/** The stream, subjects and buckets of a mesh, from `--jetstream-prefix`. */
export interface JetStreamNames {
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly owners: string;
  readonly members: string;
  readonly pins: string;
  readonly snapshots: string;
  readonly deterministic: string;
}

/** The names a mesh with `prefix` uses. */
export function jetStreamNames(prefix: string): JetStreamNames {
  return {
    stream: `${prefix}_LOG`,
    subjectPrefix: `mesh-demo.${prefix}`,
    owners: `${prefix}_OWNERS`,
    members: `${prefix}_MEMBERS`,
    pins: `${prefix}_PINS`,
    snapshots: `${prefix}_SNAPSHOTS`,
    deterministic: `${prefix}_DETERMINISTIC`,
  };
}

/**
 * Starts a dispatcher node of the JetStream mode: it joins the mesh's membership, takes the shards placed on it
 * (`JetStreamShardPlacement` over `JetStreamShardOwnership`) and serves each one's queue — rebuilt from the shard's
 * JetStream log by `openOwnedJetStreamResourceLeaseQueue` — until the shard moves or its ownership is lost; every
 * other shard is answered `resourcelease.not_owner` naming its owner. The catalog state's claims live in a
 * `JetStreamDeterministicStateStore` all nodes share, so an operation redelivered after a failover is applied once.
 * `/readyz` includes a JetStream probe; `/metrics` counts ownership changes and append refusals.
 */
export async function startJetStreamNode(
  config: MeshDemoConfig & MeshAuth,
  logger: Logger,
): Promise<JetStreamMeshNode> {
  if (config.log.kind !== "jetstream") throw new Error("startJetStreamNode needs --log jetstream://");
  // Loaded only in this mode: the container bundle leaves the NATS client out.
  const js = await import("@omnirelay/replicator-jetstream");
  const servers = [...config.log.servers];
  const names = jetStreamNames(config.jetstreamPrefix);
  const secret = config.authSecret;
  const nodeId = config.nodeId;
  const controlPlane = new ResourceLeaseControlPlane({
    logger,
    collectDefaultMetrics: true,
    ...(secret ? { auth: { principalBinding: bindingOptions(secret), admins: [MESH_ADMIN] } } : {}),
  });
  const metrics = new MeshOwnershipMetrics(controlPlane.registry);
  metrics.init(config.shards);
  const transports = new CallerTransports(() => true);
  const dispatcher = new Dispatcher({
    service: "resourcelease-mesh-demo",
    inboundMiddleware: [controlPlane.rpcMetricsMiddleware(), ...(secret ? [authMiddleware(secret)] : []), transports],
    logger,
  }).addComponent(controlPlane);
  const opened: { close(): Promise<void> }[] = [];
  try {
    const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: config.healthGraceMs, logger });
    controlPlane.addHealthProvider(tracker);
    const feed = new EventFeed(200);
    const store = await js.JetStreamDeterministicStateStore.open({
      servers,
      bucket: names.deterministic,
      ttlMs: 86_400_000,
    });
    opened.push(store);
    controlPlane.addDeterministicStore({ store: "jetstream", records: () => 0 });
    const catalog = await CatalogState.load(store, { shared: true });
    registerCatalogApply(dispatcher, catalog);
    const ownership = await js.JetStreamShardOwnership.open({
      servers,
      nodeId,
      url: config.rpcUrl,
      bucket: names.owners,
      ownershipTtlMs: config.ownershipTtlMs,
    });
    opened.push(ownership);
    const namespaces = new Map(config.shards.map((shard) => [shard, shardNamespace(config, shard)] as const));
    const slots = new ShardSlots(dispatcher, {
      namespaces,
      tracker,
      logger,
      ownerOf: async (shard) => {
        const record = await ownership.owner(shard);
        return record && !record.released && record.owner !== nodeId
          ? { owner: record.owner, url: record.url }
          : { owner: "", url: "" };
      },
    });
    const jetstream: JetStreamReachability = { reachable: true, checkedAt: new Date().toISOString() };
    const probe = async () => {
      const started = Date.now();
      try {
        await store.get("mesh-demo.probe");
        Object.assign(jetstream, { reachable: true, latencyMs: Date.now() - started, error: undefined });
      } catch (error) {
        Object.assign(jetstream, { reachable: false, error: (error as Error).message });
      }
      jetstream.checkedAt = new Date().toISOString();
    };
    await probe();
    const probeTimer = setInterval(() => void probe(), 1_000);
    probeTimer.unref();
    controlPlane.addReadinessCheck("jetstream", () =>
      jetstream.reachable ? undefined : `JetStream (${servers.join(", ")}) is unreachable: ${jetstream.error}`,
    );
    const rpc = new URL(config.rpcUrl);
    const inbound = new HttpInbound({
      dispatcher,
      host: rpc.hostname,
      port: Number(rpc.port || 80),
      readiness: [controlPlane.readinessCheck()],
      fallback: controlPlane.handler(),
      logger,
    });
    await dispatcher.start();
    const changes: OwnershipChange[] = [];
    const onEvent = placementEventRecorder({ nodeId, metrics, logger, changes });
    const serve = async (shard: string): Promise<ServedMeshShard> => {
      const namespace = namespaces.get(shard) as string;
      const counts = { completed: 0 };
      let committed: (() => void) | undefined;
      const owned = await js.openOwnedJetStreamResourceLeaseQueue({
        ownership,
        log: { servers, shard, stream: names.stream, subjectPrefix: names.subjectPrefix },
        snapshotBucket: names.snapshots,
        snapshotEveryEvents: 2_000,
        queueOptions: {
          name: namespace,
          capacity: 4_096,
          leaseDurationMs: config.leaseDurationMs,
          keys: MESH_QUEUE_KEYS,
          retryBackoff: { initialDelayMs: 250, maxDelayMs: 5_000 },
          deadLetters: { maxCount: config.deadLetterMax },
          observers: [
            (event: ResourceLeaseReplicationEvent) => tracker.observe(event),
            controlPlane.eventObserver(namespace),
            (event: ResourceLeaseReplicationEvent) => feed.push(namespace, event),
            (event: ResourceLeaseReplicationEvent) => {
              if (event.eventType === "Completed") counts.completed++;
              committed?.();
            },
          ],
          logger,
        },
      });
      if (jetstream.sync === undefined) {
        owned.log.describe().then(
          (description) => {
            jetstream.sync = description.sync;
          },
          () => undefined,
        );
      }
      // The follower records every event of the shard's log in the shared store, from the checkpoint the previous
      // owner left there (the coordinator skips what it already recorded): a failover never records an event twice.
      const follower = new LogFollower({
        replicator: {
          read: (from, limit) =>
            from > owned.log.stats().lastSequence ? (async function* () {})() : owned.log.read(from, limit),
          onCommit: (listener) => {
            committed = listener;
            const timer = setInterval(listener, 1_000);
            return () => {
              committed = undefined;
              clearInterval(timer);
            };
          },
        },
        sink: new DeterministicResourceLeaseCoordinator({
          stateStore: store,
          changeId: `resourcelease-mesh-demo.${namespace}`,
        }),
        checkpointStore: store,
        checkpointKey: `mesh-demo.follower/${namespace}`,
        logger,
      });
      await follower.start();
      const component = slots.serve(shard, owned.queue);
      const unregister = controlPlane.addComponent(component);
      logger.info(
        { shard, epoch: owned.lease.epoch, replayedEvents: owned.replayedEvents, snapshot: owned.snapshotSequence },
        "Serving shard from its JetStream log.",
      );
      return {
        shard,
        namespace,
        owned,
        since: Date.now(),
        counts,
        follower,
        close: async () => {
          slots.unserve(shard);
          unregister();
          await follower.close();
          await owned.close();
        },
      };
    };
    const placement = await js.JetStreamShardPlacement.open<ServedMeshShard>({
      ownership,
      shards: config.shards,
      servers,
      membersBucket: names.members,
      pinsBucket: names.pins,
      serve,
      onEvent,
    });
    return {
      nodeId,
      url: inbound.url,
      servers,
      names,
      namespaces,
      dispatcher,
      controlPlane,
      tracker,
      catalog,
      feed,
      ownership,
      placement,
      store,
      metrics,
      jetstream,
      changes,
      close: async () => {
        clearInterval(probeTimer);
        // Hand the shards over first (released: the others take them at once), then stop serving.
        await placement.close().catch(() => undefined);
        await dispatcher.stop({ graceMs: 2_000 });
        for (const part of opened.reverse()) await part.close().catch(() => undefined);
      },
    };
  } catch (error) {
    await dispatcher.stop({ graceMs: 0 }).catch(() => undefined);
    for (const part of opened.reverse()) await part.close().catch(() => undefined);
    throw error;
  }
}
