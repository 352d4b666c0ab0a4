import { randomUUID } from "node:crypto";
import {
  Dispatcher,
  HttpInbound,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator, InMemoryDeterministicStateStore } from "@omnirelay/core/deterministic";
import { BasicPeer, PeerLeaseHealthTracker, PeerList, RoundRobinPeerChooser } from "@omnirelay/core/peers";
import { InMemoryResourceLeaseReplicator } from "@omnirelay/core/replication";
import {
  GrpcReplicationHub,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
} from "@omnirelay/replicator-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane } from "../src/index.js";
import { closeAll, onClose, parseExposition, payload, rpc, sampleValue } from "./harness.js";
import { allQueries, dashboards, metricNames } from "./promql.js";

async function eventually<T>(probe: () => Promise<T | undefined | false>, what: string): Promise<T> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A real node with traffic over HTTP that exercises replication and peers — two workers (one lets its lease
 * expire), a deterministic sink, a sink that fails once and is retried, a replay, a peer chooser, a gRPC
 * replicator streaming to a real hub — then one scrape of the node's /metrics and one of the hub's.
 */
async function scrapeBusyNode(): Promise<{ node: string; hub: string }> {
  const ns = `billing-${randomUUID().slice(0, 8)}`;
  const dispatcher = new Dispatcher({ service: "dash-test" });
  const control = new ResourceLeaseControlPlane({ dispatcher });
  dispatcher.use(control.rpcMetricsMiddleware());
  const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: 100 });
  const store = new InMemoryDeterministicStateStore();
  const deterministic = control.trackReplicationSink({
    sink: "deterministic",
    shard: ns,
    inner: new DeterministicResourceLeaseCoordinator({ stateStore: store, changeId: "dash-test" }),
  });
  control.addDeterministicStore({ store: "deterministic", records: () => store.size });
  const log: ResourceLeaseReplicationEvent[] = [];
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    namespace: ns,
    healthTracker: tracker,
    queueOptions: {
      leaseDurationMs: 150,
      backpressure: { highWatermark: 3, lowWatermark: 1, cooldownMs: 0 },
      observers: [control.eventObserver(ns)],
      replicator: new InMemoryResourceLeaseReplicator({
        sinks: [deterministic, { apply: async (event) => void log.push(event) }],
      }),
    },
  });
  control.addComponent(component);
  control.addHealthProvider(tracker);
  const inbound = new HttpInbound({ dispatcher, fallback: control.handler() });
  const { url } = await inbound.start();
  const hub = new GrpcReplicationHub({
    store: new InMemoryReplicationHubStore(),
    shutdownGraceMs: 100,
    auth: { allowUnauthenticated: true },
  });
  await hub.start();
  const grpc = new GrpcResourceLeaseReplicator({ hubs: [`127.0.0.1:${hub.port}`], nodeId: "dash-node", shard: ns });
  control.addReplicationOutbox({ sink: "hub", shard: ns, pendingEvents: () => grpc.lag().pendingEvents });
  onClose(async () => {
    await control.close();
    await inbound.close({ graceMs: 0 });
    await component.close();
    await grpc.close();
    await hub.close({ graceMs: 0 });
  });

  // Backpressure on and off, a completed lease (worker-1) and an expired one (worker-2).
  for (const id of ["a", "b", "c"]) await rpc(url, `${ns}::enqueue`, { payload: payload(id) });
  const first = await rpc(url, `${ns}::lease`, { peerId: "worker-1", maxItems: 2 });
  for (const item of first.items) await rpc(url, `${ns}::complete`, { ownershipToken: item.ownershipToken });
  await rpc(url, `${ns}::lease`, { peerId: "worker-2", maxItems: 1 });
  await eventually(async () => log.some((e) => e.eventType === "LeaseExpired"), "the lease of worker-2 to expire");

  // A follower feeding an audit sink that is down for the first event (a failure, then its retry) …
  let down = true;
  const audit = control.trackReplicationSink({
    sink: "audit",
    shard: ns,
    inner: {
      apply: async () => {
        if (down) {
          down = false;
          throw new Error("audit store unavailable");
        }
      },
    },
  });
  await expect(audit.apply(log[0] as ResourceLeaseReplicationEvent)).rejects.toThrow("audit store unavailable");
  for (const event of log) await audit.apply(event);
  // … the deterministic sink handed the first events again (a follower restarted: replays) …
  for (const event of log.slice(0, 3)) await deterministic.apply(event);
  // … the log streamed to the hub, and a chooser picking among the workers (worker-2 is unhealthy by now).
  await grpc.publish(log);
  const chooser = control.trackPeerChooser({
    name: "workers",
    chooser: new RoundRobinPeerChooser({
      peers: new PeerList([new BasicPeer({ id: "worker-1" }), new BasicPeer({ id: "worker-2" })]),
      health: tracker,
    }),
  });
  tracker.recordPoll("worker-1"); // worker-1 is polling; worker-2 has been silent for longer than the grace period
  (await chooser.acquire()).release(true);

  const text = await (await fetch(`${url}/metrics`)).text();
  const { samples } = parseExposition(text);
  // The traffic really happened (the scrape is not just zero-valued series).
  expect(sampleValue(samples, "omnirelay_peer_lease_expiries_total{", 'peer="worker-2"')).toBe(1);
  expect(sampleValue(samples, "omnirelay_peer_lease_grants_total{", 'peer="worker-1"')).toBe(2);
  expect(sampleValue(samples, "omnirelay_resourcelease_replication_sink_failures_total{", 'sink="audit"')).toBe(1);
  expect(sampleValue(samples, "omnirelay_resourcelease_replication_sink_retries_total{", 'sink="audit"')).toBe(1);
  expect(
    sampleValue(samples, "omnirelay_resourcelease_replication_applied_total{", 'sink="deterministic"', 'replay="true"'),
  ).toBe(3);
  expect(sampleValue(samples, "omnirelay_peer_chooser_decisions_total{", 'outcome="acquired"')).toBe(1);
  expect(sampleValue(samples, "omnirelay_peer_lease_peers{", 'peer="worker-2"', 'state="unhealthy"')).toBe(1);
  expect(sampleValue(samples, "omnirelay_deterministic_store_records{")).toBe(store.size);
  expect(sampleValue(samples, "omnirelay_resourcelease_backpressure_transitions_total{", 'state="active"')).toBe(1);
  return { node: text, hub: hub.metrics() };
}

/** Metric names exposed by a Prometheus text exposition. */
function exposed(text: string): Set<string> {
  return new Set([...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )/gm)].map((m) => m[1] as string));
}

describe("every metric a dashboard or an alert uses is in a live scrape", () => {
  let names = new Set<string>();

  beforeAll(async () => {
    const scrape = await scrapeBusyNode();
    names = new Set([...exposed(scrape.node), ...exposed(scrape.hub)]);
  });
  afterAll(closeAll);

  it("the boards are Mesh Overview, Replication Health and Peer Health, each with panels", () => {
    const titles = [...dashboards().values()].map((d) => d.title).sort();
    expect(titles).toEqual(["OmniRelay Peer Health", "OmniRelay Replication Health", "ResourceLease Mesh Overview"]);
    const uids = [...dashboards().values()].map((d) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const board of dashboards().values()) expect(board.panels.length).toBeGreaterThan(5);
  });

  it("finds each queried metric name in the scrape", () => {
    const queries = allQueries();
    expect(queries.length).toBeGreaterThan(40);
    const missing: string[] = [];
    for (const { where, expr } of queries) {
      const used = metricNames(expr);
      expect(used.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of used) {
        expect(name, `${where}: ${name}`).toMatch(/^omnirelay_/);
        if (!names.has(name)) missing.push(`${where}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
