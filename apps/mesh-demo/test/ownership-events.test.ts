import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ErrorCodes, isOmniRelayError, OmniRelayError, silentLogger } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { JetStreamShardOwnership, openOwnedJetStreamResourceLeaseQueue } from "@omnirelay/replicator-jetstream";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { MeshOwnershipMetrics } from "../src/mesh-metrics.js";
import { isAppendRefusal, type OwnershipChange, placementEventRecorder } from "../src/ownership-events.js";

const SERVERS = "nats://127.0.0.1:4222";
const TTL = 1_000;

const item = (resourceId: string) => ({
  resourceType: "t",
  resourceId,
  partitionKey: "p",
  payloadEncoding: "application/json",
  body: new TextEncoder().encode("{}"),
});

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? Number.NaN);
}

describe("a node's ownership metrics on a real takeover (machine's NATS)", () => {
  it("counts a loss caused by the log refusing a stale owner's append as an append refusal; other losses not", async () => {
    const tag = randomBytes(4).toString("hex");
    const names = { stream: `MESHEV_${tag}_LOG`, owners: `MESHEV_${tag}_OWNERS`, snapshots: `MESHEV_${tag}_SNAP` };
    const log = { servers: SERVERS, shard: "orders", stream: names.stream, subjectPrefix: `mesh-ev.${tag}` };
    const open = (nodeId: string, clock?: FakeClock) =>
      JetStreamShardOwnership.open({
        servers: SERVERS,
        nodeId,
        url: `http://${nodeId}.test:7420`,
        bucket: names.owners,
        ownershipTtlMs: TTL,
        ...(clock ? { clock } : {}),
      });
    // a's timers never run (a paused process): it neither renews nor notices that its ownership ran out.
    const a = await open("a", new FakeClock());
    const b = await open("b");
    try {
      const first = await openOwnedJetStreamResourceLeaseQueue({ ownership: a, log, snapshotBucket: names.snapshots });
      await first.queue.enqueue(item("r1"));
      const second = await openOwnedJetStreamResourceLeaseQueue({ ownership: b, log, snapshotBucket: names.snapshots });
      // a still believes it owns the shard: the stream refuses its append, and its lease is lost with that cause.
      const refused = await first.queue.enqueue(item("r2")).catch((e: unknown) => e);
      expect(isOmniRelayError(refused) && refused.code).toBe(ErrorCodes.resourceLease.notOwner);
      const lost = first.lease.lost as OmniRelayError;
      expect(isAppendRefusal(lost)).toBe(true);

      const registry = new Registry();
      const metrics = new MeshOwnershipMetrics(registry);
      metrics.init(["orders"]);
      const changes: OwnershipChange[] = [];
      const record = placementEventRecorder({ nodeId: "a", metrics, logger: silentLogger, changes });
      record({ type: "acquired", shard: "orders", epoch: first.lease.epoch });
      expect(await metricValue(registry, "omnirelay_mesh_shard_owned", { shard: "orders" })).toBe(1);
      record({ type: "lost", shard: "orders", epoch: first.lease.epoch, error: lost });
      const refusals = () => metricValue(registry, "omnirelay_mesh_append_refusals_total", { shard: "orders" });
      expect(await refusals()).toBe(1);
      expect(await metricValue(registry, "omnirelay_mesh_shard_owned", { shard: "orders" })).toBe(0);
      // A loss without a refusal (a renewal that came too late) is a loss, not a refusal.
      const late = new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.resourceLease.notOwner,
        message: "renewal too late",
      });
      record({ type: "lost", shard: "orders", epoch: first.lease.epoch, error: late });
      expect(await refusals()).toBe(1);
      const lostCount = metricValue(registry, "omnirelay_mesh_ownership_changes_total", {
        shard: "orders",
        change: "lost",
      });
      expect(await lostCount).toBe(2);
      expect(changes.map((c) => c.change)).toEqual(["acquired", "lost", "lost"]);
      await first.close().catch(() => undefined);
      await second.close();
    } finally {
      await a.close().catch(() => undefined);
      await b.close();
      const nc = await connect({ servers: SERVERS });
      const jsm = await jetstreamManager(nc);
      for (const s of [names.stream, `KV_${names.owners}`, `KV_${names.snapshots}`]) {
        await jsm.streams.delete(s).catch(() => undefined);
      }
      await nc.close();
    }
  });
});
