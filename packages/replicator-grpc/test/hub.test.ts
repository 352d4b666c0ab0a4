import { ErrorCodes } from "@omnirelay/core";
import { InMemoryResourceLeaseEventLog } from "@omnirelay/core/replication";
import { afterEach, describe, expect, it } from "vitest";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
} from "../src/index.js";
import { events, fast, until } from "./helpers.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function startHub(store = new InMemoryReplicationHubStore(), port = 0) {
  // Plaintext on loopback: identity binding is tested in identity.test.ts.
  const hub = new GrpcReplicationHub({ store, port, shutdownGraceMs: 100, auth: { allowUnauthenticated: true } });
  await hub.start();
  cleanup.push(() => hub.close());
  return { hub, store, address: `127.0.0.1:${hub.port}` };
}

function replicator(
  address: string | string[],
  extra: Partial<ConstructorParameters<typeof GrpcResourceLeaseReplicator>[0]> = {},
) {
  const r = new GrpcResourceLeaseReplicator({
    hubs: Array.isArray(address) ? address : [address],
    nodeId: "node-a",
    ...fast,
    ...extra,
  });
  cleanup.push(() => r.close());
  return r;
}

const seqs = (list: readonly { sequenceNumber: number }[]) => list.map((e) => e.sequenceNumber);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("GrpcReplicationHub + GrpcResourceLeaseReplicator", () => {
  it("go through the shared lifecycle states", async () => {
    const hub = new GrpcReplicationHub({
      store: new InMemoryReplicationHubStore(),
      shutdownGraceMs: 100,
      auth: { allowUnauthenticated: true },
    });
    cleanup.push(() => hub.close());
    expect(hub.state).toBe("idle");
    const starting = hub.start();
    expect(hub.state).toBe("starting");
    await starting;
    expect(hub.state).toBe("running");
    const r = replicator(`127.0.0.1:${hub.port}`);
    expect(r.state).toBe("idle");
    await r.publish(events(1, 3));
    expect(r.state).toBe("running");
    await r.close();
    expect(r.state).toBe("stopped");
    const closing = hub.close({ graceMs: 50 });
    expect(hub.state).toBe("draining");
    expect(hub.close()).toBe(closing);
    await closing;
    expect(hub.state).toBe("stopped");
    await expect(hub.start()).rejects.toMatchObject({ code: ErrorCodes.replicationHub.closed });
  });

  it("stores each source's events in order and resolves publish only once the hub has them", async () => {
    const { hub, store, address } = await startHub();
    const a = replicator(address, { nodeId: "node-a" });
    const b = replicator(address, { nodeId: "node-b", shard: "billing" });
    await Promise.all([a.publish(events(1, 50, "a")), b.publish(events(1, 30, "b"))]);
    await a.publish(events(51, 60, "a"));
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 60));
    expect(seqs(store.events({ nodeId: "node-b", shard: "billing" }))).toEqual(range(1, 30));
    expect(store.events({ nodeId: "node-b", shard: "billing" })[0]?.metadata["test.tag"]).toBe("b");
    expect(hub.checkpoint({ nodeId: "node-a", shard: "" })).toBe(60);
    expect(a.lag()).toMatchObject({ headSequence: 60, ackedSequence: 60, pendingEvents: 0, hub: address });
    expect(hub.metrics()).toContain('omnirelay_replication_hub_last_sequence{node_id="node-b",shard="billing"} 30');
  });

  it("acknowledges re-sent events without storing them twice, and refuses a gap it cannot fill", async () => {
    const { hub, store, address } = await startHub();
    const first = replicator(address);
    await first.publish(events(1, 10));
    await first.close();
    // A restarted dispatcher re-publishes 6..10 (already stored) and continues with 11..15.
    const second = replicator(address);
    await second.publish(events(6, 15));
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 15));
    // The hello told the new stream the hub's checkpoint (10). The replicator still held 6..10, so it sent them
    // again for the hub to compare with what it stored (equal: acknowledged, not stored twice) rather than taking
    // the checkpoint's word that they are its own.
    expect(hub.sourceStatuses()[0]).toMatchObject({ duplicateEvents: 5, conflicts: 0 });
    // A third publishes from 20 with no backfill log: the hub would see a gap, so nothing is sent.
    await second.close();
    const third = replicator(address);
    const pending = third.publish(events(20, 22));
    await until(() => third.lag().lastError?.code === ErrorCodes.replicationHub.gap);
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 15));
    await third.close();
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.replicationHub.closed });
  });

  it("fills a gap at the hub from the backfill log", async () => {
    const { store, address } = await startHub();
    const earlier = replicator(address);
    await earlier.publish(events(1, 5));
    await earlier.close(); // one live publish stream per source: the earlier process is gone before the next one
    const local = new InMemoryResourceLeaseEventLog();
    await local.publish(events(1, 40));
    const r = replicator(address, { backfill: local, maxBatchEvents: 7 });
    await r.publish(events(41, 45));
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 45));
  });

  it("serves a source's stream from a sequence number and follows it live", async () => {
    const { address } = await startHub();
    const r = replicator(address);
    await r.publish(events(1, 5));
    const client = new GrpcReplicationHubClient({ address });
    cleanup.push(() => client.close());
    const abort = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const e of client.subscribe({
        source: { nodeId: "node-a", shard: "" },
        fromSequence: 3,
        signal: abort.signal,
      })) {
        seen.push(e.sequenceNumber);
        if (e.sequenceNumber === 9) abort.abort();
      }
    })();
    await until(() => seen.length === 3);
    await r.publish(events(6, 9));
    await reading;
    expect(seen).toEqual(range(3, 9));
    const once: number[] = [];
    for await (const e of client.subscribe({ source: { nodeId: "node-a", shard: "" }, follow: false })) {
      once.push(e.sequenceNumber);
    }
    expect(once).toEqual(range(1, 9));
    expect(await client.checkpoint({ nodeId: "node-a", shard: "" })).toMatchObject({ lastSequence: 9, lag: 0 });
    await expect(client.checkpoint({ nodeId: "nobody", shard: "" })).rejects.toMatchObject({
      status: "not-found",
      code: ErrorCodes.replicationHub.sourceNotFound,
    });
    expect(await client.health()).toBe(true);
  });

  it("resumes from the hub's checkpoint after the hub restarts on the same store", async () => {
    const { hub, store, address } = await startHub();
    const r = replicator(address);
    await r.publish(events(1, 20));
    const port = hub.port;
    await hub.close();
    const during = r.publish(events(21, 40));
    await until(() => r.lag().hub === undefined);
    await startHub(store, port);
    await during;
    await r.publish(events(41, 50));
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 50));
    expect(r.lag().connects).toBeGreaterThanOrEqual(2);
  });

  it("'block' overflow: a publish that does not fit waits until acknowledgements make room", async () => {
    const { hub } = await startHub();
    const port = hub.port;
    await hub.close();
    const r = replicator(`127.0.0.1:${port}`, { maxOutboxEvents: 4 });
    const p1 = r.publish(events(1, 4));
    let p2Done = false;
    const p2 = r.publish(events(5, 6)).then(() => {
      p2Done = true;
    });
    expect(r.lag()).toMatchObject({ pendingEvents: 6, headSequence: 6, ackedSequence: 0, lagging: false });
    await until(() => r.lag().lastError !== undefined);
    expect(p2Done).toBe(false);
    const { store } = await startHub(new InMemoryReplicationHubStore(), port);
    await Promise.all([p1, p2]);
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 6));
    expect(r.lag().pendingEvents).toBe(0);
  });

  it("'lag' overflow: accepts past the limit, reports lagging, refuses at the hard cap", async () => {
    const { hub } = await startHub();
    const port = hub.port;
    await hub.close();
    const r = replicator(`127.0.0.1:${port}`, { maxOutboxEvents: 4, overflow: "lag", hardCapEvents: 8 });
    const accepted = r.publish(events(1, 6));
    expect(r.lag()).toMatchObject({ pendingEvents: 6, lagging: true });
    await expect(r.publish(events(7, 9))).rejects.toMatchObject({
      status: "resource-exhausted",
      code: ErrorCodes.replicationHub.outboxFull,
    });
    const after = r.publish(events(7, 8));
    const { store } = await startHub(new InMemoryReplicationHubStore(), port);
    await Promise.all([accepted, after]);
    expect(seqs(store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 8));
    expect(r.lag()).toMatchObject({ pendingEvents: 0, lagging: false });
  });

  it("rejects events out of order without queueing them", async () => {
    const r = replicator("127.0.0.1:1");
    await expect(r.publish([...events(3, 3), ...events(2, 2)])).rejects.toMatchObject({
      code: "resourcelease.replication.out_of_order",
    });
    void r.publish(events(5, 6)).catch(() => undefined);
    await expect(r.publish(events(6, 7))).rejects.toMatchObject({ status: "failed-precondition" });
    expect(r.lag().pendingEvents).toBe(2);
  });

  it("skips a hub that fails and streams to a healthy one", async () => {
    const dead = await startHub();
    const deadAddress = dead.address;
    await dead.hub.close();
    const live = await startHub();
    const r = replicator([deadAddress, live.address], { unhealthyCooldownMs: 60_000 });
    await r.publish(events(1, 10));
    expect(r.lag().hub).toBe(live.address);
    expect(seqs(live.store.events({ nodeId: "node-a", shard: "" }))).toEqual(range(1, 10));
  });

  it("validates options", () => {
    expect(() => new GrpcResourceLeaseReplicator({ hubs: [], nodeId: "a" })).toThrow(
      expect.objectContaining({ metadata: { option: "hubs" } }),
    );
    expect(() => new GrpcResourceLeaseReplicator({ hubs: ["h:1"], nodeId: "a b" })).toThrow(
      expect.objectContaining({ metadata: { option: "nodeId" } }),
    );
    expect(() => new GrpcResourceLeaseReplicator({ hubs: ["h:1"], nodeId: "a", maxOutboxEvents: 0 })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "maxOutboxEvents" } }),
    );
  });
});
