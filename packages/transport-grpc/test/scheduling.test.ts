import { Dispatcher, ResourceLeaseClient, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound } from "../src/index.js";
import { Cleanup, rejectionOf } from "./harness.js";

const payload = (id: string, extra: Record<string, unknown> = {}) => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: "p",
  payloadEncoding: "json",
  ...extra,
});

describe("delayed items and priorities over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  async function stack(clock: FakeClock) {
    const dispatcher = new Dispatcher({ service: "mesh" });
    const component = cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions: { clock } }));
    const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
    const { port } = await inbound.start();
    const outbound = cleanup.add(new GrpcOutbound({ address: `127.0.0.1:${port}` }));
    const client = new ResourceLeaseClient({ outbound, caller: "producer" });
    cleanup.add({ close: () => client.close() });
    return { client, queue: component.queue };
  }

  it("notBefore, delayMs and priority survive the proto both ways, and lease honours them", async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    const { client, queue } = await stack(clock);
    const t0 = clock.now();
    await client.enqueueMany([
      payload("later", { notBefore: t0 + 10_000, priority: -(2 ** 31) }),
      payload("zero", { priority: 0 }),
      payload("top", { priority: 2 ** 31 - 1 }),
    ]);
    await client.enqueue(payload("soon"), { delayMs: 2_000 });
    expect(queue.stats()).toMatchObject({ pendingCount: 4, delayedCount: 2 });
    const first = await client.lease({ maxItems: 10 });
    expect(first.map((g) => [g.payload.resourceId, g.payload.priority])).toEqual([
      ["top", 2 ** 31 - 1],
      ["zero", 0], // proto3 optional: a 0 priority is present, not lost as a default
    ]);
    clock.advance(2_000);
    const [soon] = await client.lease();
    expect(soon!.payload).toMatchObject({ resourceId: "soon", notBefore: t0 + 2_000 });
    expect(soon!.payload).not.toHaveProperty("delayMs");
    clock.advance(8_000);
    const [later] = await client.lease();
    expect(later!.payload).toMatchObject({ resourceId: "later", notBefore: t0 + 10_000, priority: -(2 ** 31) });
  });

  it("refuses a priority beyond int32 and a notBefore beyond year 9999 with INVALID_ARGUMENT payload.invalid", async () => {
    const { client, queue } = await stack(new FakeClock());
    for (const extra of [{ priority: 2 ** 31 }, { notBefore: 253_402_300_800_000 }, { delayMs: -5 }]) {
      const err = await rejectionOf(client.enqueue(payload("x", extra)));
      expect(err).toMatchObject({ status: "invalid-argument", code: "resourcelease.payload.invalid" });
    }
    expect(queue.stats().pendingCount).toBe(0);
  });
});
