import { Dispatcher, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane as ControlPlane } from "../src/index.js";
import { closeAll, onClose, parseExposition, payload, sampleValue } from "./harness.js";

afterEach(closeAll);

async function post(url: string, procedure: string, body: unknown) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "rpc-procedure": procedure },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

describe("lease-safety metrics", () => {
  it("count completions accepted during a lock-delay per shard, and fenced calls per procedure", async () => {
    const clock = new FakeClock();
    const dispatcher = new Dispatcher({ service: "diag-test", clock });
    const control = new ControlPlane({ dispatcher });
    dispatcher.use(control.rpcMetricsMiddleware());
    const component = new ResourceLeaseDispatcherComponent(dispatcher, {
      namespace: "orders",
      queueOptions: { leaseDurationMs: 1000, lockDelayMs: 5000, observers: [control.eventObserver("orders")] },
    });
    const inbound = new HttpInbound({ dispatcher, fallback: control.handler() });
    const { url } = await inbound.start();
    onClose(async () => {
      await control.close();
      await inbound.close({ graceMs: 0 });
      await component.close();
    });
    for (const id of ["a", "b", "c"]) await post(url, "orders::enqueue", { payload: payload(id) });
    const leased = await post(url, "orders::lease", { maxItems: 3 });
    const [a, b, c] = leased.json.items as Array<{ ownershipToken: unknown }>;
    expect((await post(url, "orders::complete", { ownershipToken: a!.ownershipToken })).status).toBe(200); // on time
    clock.advance(1000);
    expect((await post(url, "orders::complete", { ownershipToken: b!.ownershipToken })).status).toBe(200); // late
    clock.advance(5000);
    expect((await post(url, "orders::lease", { maxItems: 3 })).json.items).toHaveLength(1); // c, granted again
    for (const verb of ["heartbeat", "complete"]) {
      expect((await post(url, `orders::${verb}`, { ownershipToken: c!.ownershipToken })).status).toBe(412);
    }
    const { types, samples } = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(types.get("omnirelay_resourcelease_late_completions_total")).toBe("counter");
    expect(sampleValue(samples, "omnirelay_resourcelease_late_completions_total", 'shard="orders"')).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_replication_events_total", 'event_type="Completed"')).toBe(2);
    expect(types.get("omnirelay_resourcelease_fenced_calls_total")).toBe("counter");
    for (const verb of ["heartbeat", "complete"]) {
      expect(
        sampleValue(samples, "omnirelay_resourcelease_fenced_calls_total", `procedure="orders::${verb}"`),
        verb,
      ).toBe(1);
    }
  });
});
