import { ResourceLeaseQueue } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane } from "./control-plane.js";

async function series(control: ResourceLeaseControlPlane, name: string): Promise<string[]> {
  const text = await control.registry.getSingleMetricAsString(name);
  return text.split("\n").filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

describe("health metrics on a real registry", () => {
  it("stamps a shard's last replication event, its registration time before the first", async () => {
    const clock = new FakeClock(1_000_000);
    await using control = new ResourceLeaseControlPlane({ clock });
    await using queue = new ResourceLeaseQueue({ clock });
    control.addShard({ namespace: "orders", queue });
    const observe = control.eventObserver("orders");
    const name = "omnirelay_resourcelease_replication_last_event_timestamp_seconds";
    expect(await series(control, name)).toEqual([`${name}{shard="orders"} 1000`]);
    clock.advance(60_000);
    observe({ eventType: "Enqueue", sequenceNumber: 1, timestamp: clock.now(), metadata: {} } as never);
    clock.advance(5_000);
    expect(await series(control, name)).toEqual([`${name}{shard="orders"} 1060`]);
  });

  it("gives at most maxPeerLabels peers a label of their own and frees the label of a forgotten peer", async () => {
    const clock = new FakeClock(1_000_000);
    await using control = new ResourceLeaseControlPlane({ clock, maxPeerLabels: 1 });
    const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 10_000 });
    control.addHealthProvider(tracker);
    tracker.recordPoll("alpha");
    clock.advance(30_000);
    tracker.recordPoll("beta");
    tracker.recordPoll("gamma");
    const observe = control.eventObserver("orders");
    const expired = (peerId: string) =>
      ({ eventType: "LeaseExpired", peerId, sequenceNumber: 1, timestamp: 0, metadata: {} }) as never;
    observe(expired("alpha"));
    observe(expired("beta"));
    expect(await series(control, "omnirelay_peer_lease_peers")).toEqual([
      'omnirelay_peer_lease_peers{peer="alpha",state="unhealthy"} 1',
      'omnirelay_peer_lease_peers{peer="_other",state="healthy"} 2',
    ]);
    expect(await series(control, "omnirelay_peer_lease_heartbeat_age_seconds")).toEqual([
      'omnirelay_peer_lease_heartbeat_age_seconds{peer="alpha"} 30',
      'omnirelay_peer_lease_heartbeat_age_seconds{peer="_other"} 0',
    ]);
    expect(await series(control, "omnirelay_peer_lease_expiries_total")).toEqual([
      'omnirelay_peer_lease_expiries_total{peer="alpha"} 1',
      'omnirelay_peer_lease_expiries_total{peer="_other"} 1',
    ]);
    // alpha leaves: its series go, and the next peer seen takes the free label.
    tracker.forget("alpha");
    expect(await series(control, "omnirelay_peer_lease_peers")).toEqual([
      'omnirelay_peer_lease_peers{peer="beta",state="healthy"} 1',
      'omnirelay_peer_lease_peers{peer="_other",state="healthy"} 1',
    ]);
    expect(await series(control, "omnirelay_peer_lease_expiries_total")).toEqual([
      'omnirelay_peer_lease_expiries_total{peer="_other"} 1',
      'omnirelay_peer_lease_expiries_total{peer="beta"} 0',
    ]);
  });

  it("exports checkpoint, behind, outbox, store and backpressure gauges from what is registered", async () => {
    await using control = new ResourceLeaseControlPlane();
    await using queue = new ResourceLeaseQueue({ backpressure: { highWatermark: 2, lowWatermark: 1, cooldownMs: 0 } });
    control.addShard({ namespace: "orders", queue });
    const sink = control.trackReplicationSink({ sink: "audit", shard: "orders" });
    await queue.enqueue({ resourceType: "t", resourceId: "a", partitionKey: "p", payloadEncoding: "json" } as never);
    await queue.enqueue({ resourceType: "t", resourceId: "b", partitionKey: "p", payloadEncoding: "json" } as never);
    await sink.apply({ eventType: "Enqueue", sequenceNumber: 1, timestamp: Date.now(), metadata: {} } as never);
    let depth = 7;
    control.addReplicationOutbox({ sink: "hub", shard: "orders", pendingEvents: () => depth });
    control.addDeterministicStore({ store: "det", records: async () => 42 });
    control.addDeterministicStore({
      store: "closed",
      records: () => {
        throw new Error("closed");
      },
    });
    const p = "omnirelay_resourcelease_";
    expect(await series(control, `${p}replication_queue_sequence`)).toEqual([
      `${p}replication_queue_sequence{shard="orders"} 2`,
    ]);
    expect(await series(control, `${p}replication_checkpoint_sequence`)).toEqual([
      `${p}replication_checkpoint_sequence{sink="audit",shard="orders"} 1`,
    ]);
    expect(await series(control, `${p}replication_behind_events`)).toEqual([
      `${p}replication_behind_events{sink="audit",shard="orders"} 1`,
    ]);
    expect(await series(control, `${p}replication_outbox_events`)).toEqual([
      `${p}replication_outbox_events{sink="hub",shard="orders"} 7`,
    ]);
    depth = 0;
    expect(await series(control, `${p}replication_outbox_events`)).toEqual([
      `${p}replication_outbox_events{sink="hub",shard="orders"} 0`,
    ]);
    expect(await series(control, "omnirelay_deterministic_store_records")).toEqual([
      'omnirelay_deterministic_store_records{store="det"} 42',
    ]);
    expect(await series(control, `${p}backpressure_active`)).toEqual([`${p}backpressure_active{shard="orders"} 1`]);
  });
});
