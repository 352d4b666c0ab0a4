import { ResourceLeaseQueue } from "@omnirelay/core";
import { ResourceLeaseBackpressureDiagnosticsListener } from "@omnirelay/core/backpressure";
import { describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane } from "./control-plane.js";

describe("ResourceLeaseControlPlane registration", () => {
  it("relays a diagnostics listener when the queue has no gate of its own", async () => {
    await using control = new ResourceLeaseControlPlane();
    await using queue = new ResourceLeaseQueue();
    const listener = new ResourceLeaseBackpressureDiagnosticsListener();
    control.addShard({ namespace: "orders", queue, backpressure: listener });
    const signal = { isActive: true, pendingCount: 9, observedAt: 0, highWatermark: 8, lowWatermark: 4 };
    listener.onBackpressureChanged(signal);
    await expect
      .poll(
        async () =>
          await control.registry.getSingleMetricAsString("omnirelay_resourcelease_backpressure_transitions_total"),
      )
      .toContain('omnirelay_resourcelease_backpressure_transitions_total{shard="orders",state="active"} 1');
  });

  it("refuses duplicate names and bad options with stable codes", async () => {
    await using control = new ResourceLeaseControlPlane();
    await using queue = new ResourceLeaseQueue();
    control.addShard({ namespace: "a", queue });
    expect(() => control.addShard({ namespace: "a", queue })).toThrow(
      expect.objectContaining({ status: "already-exists", code: "omnirelay.control.duplicate" }),
    );
    control.addReplicationSource({ sink: "s", shard: "a", checkpoint: () => ({ lastSequence: 0 }) });
    expect(() => control.trackReplicationSink({ sink: "s", shard: "a" })).toThrow(
      expect.objectContaining({ code: "omnirelay.control.duplicate" }),
    );
    expect(() => new ResourceLeaseControlPlane({ maxReplicationLagMs: -1 })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "maxReplicationLagMs" } }),
    );
    expect(() => new ResourceLeaseControlPlane({ auth: { principalBinding: {}, admins: ["*"] } })).toThrow(
      expect.objectContaining({ metadata: { option: "auth.admins" } }),
    );
  });

  it("reports a failing readiness check and a throwing checkpoint as issues, not exceptions", async () => {
    await using control = new ResourceLeaseControlPlane();
    const remove = control.addReadinessCheck("log", () => "log not open");
    control.addReplicationSource({
      sink: "hub",
      shard: "x",
      checkpoint: () => {
        throw new Error("hub unreachable");
      },
    });
    expect(control.readinessIssues()).toEqual(["log: log not open", "replication hub/x: hub unreachable"]);
    remove();
    expect(control.readinessCheck()()).toBe("replication hub/x: hub unreachable");
  });

  it("adds Node.js process metrics only when asked, to its own registry", async () => {
    await using plain = new ResourceLeaseControlPlane();
    await using withDefaults = new ResourceLeaseControlPlane({ collectDefaultMetrics: true });
    expect(await withDefaults.registry.metrics()).toContain("# TYPE process_cpu_user_seconds_total counter");
    expect(await plain.registry.metrics()).not.toContain("process_cpu_user_seconds_total");
  });
});
