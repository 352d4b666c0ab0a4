import { Dispatcher, HttpInbound, ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane as ControlPlane } from "../src/index.js";
import { closeAll, onClose, parseExposition, payload, sampleValue } from "./harness.js";

afterEach(closeAll);

describe("omnirelay_resourcelease_late_completions_total", () => {
  it("counts a completion accepted during a lock-delay, per shard, and not an ordinary one", async () => {
    const dispatcher = new Dispatcher({ service: "diag-test" });
    const control = new ControlPlane({ dispatcher });
    const clock = new FakeClock();
    const queue = new ResourceLeaseQueue({
      clock,
      leaseDurationMs: 1000,
      lockDelayMs: 5000,
      observers: [control.eventObserver("orders")],
    });
    const inbound = new HttpInbound({ dispatcher, fallback: control.handler() });
    const { url } = await inbound.start();
    onClose(async () => {
      await control.close();
      await inbound.close({ graceMs: 0 });
      await queue.close();
    });
    const item = payload("a") as Parameters<ResourceLeaseQueue["enqueue"]>[0];
    await queue.enqueueMany([item, { ...item, resourceId: "b" }]);
    const [a, b] = await queue.lease({ maxItems: 2 });
    await queue.complete(a!.ownershipToken); // on time: not late
    clock.advance(1000);
    await queue.complete(b!.ownershipToken); // expired, in its lock-delay: late
    const { types, samples } = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(types.get("omnirelay_resourcelease_late_completions_total")).toBe("counter");
    expect(sampleValue(samples, "omnirelay_resourcelease_late_completions_total", 'shard="orders"')).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_replication_events_total", 'event_type="Completed"')).toBe(2);
  });
});
