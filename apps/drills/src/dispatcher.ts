import { mkdirSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import {
  Dispatcher,
  HttpInbound,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { ResourceLeaseControlPlane } from "@omnirelay/diagnostics";
import { GrpcResourceLeaseReplicator } from "@omnirelay/replicator-grpc";
import { openDurableResourceLeaseQueue, SqliteDeterministicStateStore } from "@omnirelay/replicator-sqlite";
import { drillCoordinator, storeDigest } from "./digest.js";
import { type Command, commands, emit, pause } from "./lines.js";

/** Configuration of a drill dispatcher (passed as JSON). */
export interface DrillDispatcherConfig {
  readonly nodeId: string;
  /** Address to listen on (`0.0.0.0` inside a namespace). */
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly leaseMs: number;
  /** The tracker's grace: a peer silent this long is unhealthy (the heartbeat window). */
  readonly graceMs: number;
  /** A replication hub (`host:port`) the node forwards its ordered events to. */
  readonly hub?: string;
}

const CHANGE_ID = "drill";

/**
 * A dispatcher node for the drills: a SQLite-durable queue served over HTTP as `resourcelease::*`, a peer health
 * tracker (`/omnirelay/control/lease-health` via the diagnostics control plane), a deterministic store recording
 * every event once (in order), and optionally a gRPC replicator forwarding the events to a hub. Every event is
 * reported on stdout; the test drives it with commands on stdin (enqueue, load, health, digest, stop).
 */
export async function runDispatcher(config: DrillDispatcherConfig): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true });
  // Kept long after a peer goes silent: the drills read a dead peer's health well after its grace ends.
  const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: config.graceMs, forgetIdleAfterMs: 120_000 });
  const controlPlane = new ResourceLeaseControlPlane();
  controlPlane.addHealthProvider(tracker);
  const dispatcher = new Dispatcher({ service: `drill-${config.nodeId}` }).addComponent(controlPlane);
  const store = await SqliteDeterministicStateStore.open({ path: join(config.dataDir, "deterministic.db") });
  dispatcher.addComponent(store);
  const coordinator = drillCoordinator(store, CHANGE_ID);
  const hub = config.hub
    ? new GrpcResourceLeaseReplicator({
        hubs: [config.hub],
        nodeId: config.nodeId,
        overflow: "lag",
        connectTimeoutMs: 1_000,
        ackTimeoutMs: 1_000,
        reconnectInitialDelayMs: 50,
        reconnectMaxDelayMs: 300,
      })
    : undefined;
  // Applied strictly in event order, one at a time: the store sees the log's order.
  let recording = Promise.resolve();
  const record = (event: ResourceLeaseReplicationEvent) => {
    recording = recording.then(async () => {
      const result = await coordinator.record(event);
      if (!result.recorded) emit({ t: "rerecorded", seq: event.sequenceNumber });
    });
  };
  const durable = await openDurableResourceLeaseQueue({
    path: join(config.dataDir, "events.db"),
    queueOptions: {
      leaseDurationMs: config.leaseMs,
      maxAttempts: 10,
      observers: [
        (event) => tracker.observe(event),
        (event) => emit(eventLine(event)),
        record,
        (event) => {
          hub?.publish([event]).catch((error: unknown) => emit({ t: "hub-error", message: String(error) }));
        },
      ],
    },
  });
  dispatcher.addComponent(durable);
  new ResourceLeaseDispatcherComponent(dispatcher, { queue: durable.queue, healthTracker: tracker });
  const planeHandler = controlPlane.handler();
  const inbound = new HttpInbound({
    dispatcher,
    host: config.host,
    port: config.port,
    fallback: (req, res) => (req.url === "/drill/metrics" ? lagMetrics(hub, res) : planeHandler(req, res)),
  });
  await dispatcher.start();
  const lagTimer = hub ? setInterval(() => emit({ t: "lag", ...hubLag(hub) }), 100) : undefined;
  emit({ t: "ready", url: inbound.url, nodeId: config.nodeId });

  const handle = async (command: Command) => {
    switch (command.cmd) {
      case "load":
        await load(durable.queue, command);
        return;
      case "health": {
        const res = await fetch(`${inbound.url}/omnirelay/control/lease-health`);
        emit({ t: "health", status: res.status, body: await res.json() });
        return;
      }
      case "digest": {
        await recording;
        const lastSequence = durable.queue.stats().lastEventSequence;
        emit({ t: "digest", ...(await storeDigest(store, { changeId: CHANGE_ID, lastSequence })) });
        return;
      }
      case "stats":
        emit({ t: "stats", ...durable.queue.stats(), ...(hub ? { hub: hubLag(hub) } : {}) });
        return;
      default:
        throw new Error(`unknown command ${command.cmd}`);
    }
  };
  await commands(handle);
  // stdin closed: the test is done with this node.
  if (lagTimer) clearInterval(lagTimer);
  await recording;
  await dispatcher.stop({ graceMs: 500 });
  await hub?.close();
  process.exit(0);
}

/** Enqueues `count` items, `perTick` at once every `tickMs`, named `{prefix}-{n}`; reports `loaded` when done. */
async function load(queue: { enqueue(payload: unknown): Promise<unknown> }, command: Command): Promise<void> {
  const count = Number(command.count);
  const perTick = Number(command.perTick ?? count);
  const tickMs = Number(command.tickMs ?? 0);
  const prefix = String(command.prefix ?? "item");
  for (let from = 1; from <= count; from += perTick) {
    const tick = pause(tickMs);
    const batch: Promise<unknown>[] = [];
    for (let n = from; n < from + perTick && n <= count; n++) {
      batch.push(
        queue.enqueue({
          resourceType: "drill",
          resourceId: `${prefix}-${n}`,
          partitionKey: prefix,
          payloadEncoding: "json",
          requestId: `${prefix}-${n}`,
        }),
      );
    }
    await Promise.all(batch);
    await tick;
  }
  emit({ t: "loaded", prefix, count });
}

function hubLag(hub: GrpcResourceLeaseReplicator) {
  const lag = hub.lag();
  return { pending: lag.pendingEvents, head: lag.headSequence, acked: lag.ackedSequence, connected: !!lag.hub };
}

function lagMetrics(hub: GrpcResourceLeaseReplicator | undefined, res: ServerResponse): boolean {
  const pending = hub ? hub.lag().pendingEvents : 0;
  res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
  res.end(
    "# HELP omnirelay_resourcelease_replication_lag Events not yet acknowledged by the replication hub.\n" +
      "# TYPE omnirelay_resourcelease_replication_lag gauge\n" +
      `omnirelay_resourcelease_replication_lag{sink="grpc-hub"} ${pending}\n`,
  );
  return true;
}

/** The parts of an event the drills assert on. */
function eventLine(event: ResourceLeaseReplicationEvent): Record<string, unknown> & { t: string } {
  return {
    t: "event",
    seq: event.sequenceNumber,
    type: event.eventType,
    ts: event.timestamp,
    ...(event.peerId ? { peer: event.peerId } : {}),
    ...(event.ownership ? { sid: event.ownership.sequenceId, ft: event.ownership.fencingToken } : {}),
    rid: event.payload?.resourceId ?? event.item?.payload.resourceId,
    ...(event.leaseExpiresAt !== undefined ? { exp: event.leaseExpiresAt } : {}),
    ...(event.metadata["refused.verb"] ? { refused: event.metadata["refused.verb"] } : {}),
  };
}
