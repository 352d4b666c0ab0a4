import { Dispatcher, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
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

describe("outlier ejection in diagnostics", () => {
  it("lease-health shows the ejected peer with reason and until-when; /metrics counts the ejection and the ejected peer", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const dispatcher = new Dispatcher({ service: "diag-test", clock });
    const control = new ControlPlane({ dispatcher });
    const tracker = new PeerLeaseHealthTracker({ clock, ejection: { consecutiveExpiries: 3, baseEjectionMs: 60_000 } });
    const component = new ResourceLeaseDispatcherComponent(dispatcher, {
      namespace: "orders",
      healthTracker: tracker,
      queueOptions: { leaseDurationMs: 1000 },
    });
    control.addComponent(component);
    control.addHealthProvider(tracker);
    const inbound = new HttpInbound({ dispatcher, fallback: control.handler() });
    const { url } = await inbound.start();
    onClose(async () => {
      await control.close();
      await inbound.close({ graceMs: 0 });
      await component.close();
    });
    for (const id of ["a", "b", "c"]) await post(url, "orders::enqueue", { payload: payload(id) });
    expect((await post(url, "orders::lease", { peerId: "good", maxItems: 1 })).status).toBe(200);
    expect((await post(url, "orders::lease", { peerId: "bad", maxItems: 2 })).json.items).toHaveLength(2);
    clock.advance(1000); // the good peer's lease expires too, but one expiry is no run
    const again = await post(url, "orders::lease", { peerId: "bad", maxItems: 1 });
    expect(again.json.items).toHaveLength(1);
    clock.advance(1000); // the bad peer's third expiry in a row

    const health = (await (await fetch(`${url}/omnirelay/control/lease-health`)).json()) as any;
    const bad = health.peers.find((p: { peerId: string }) => p.peerId === "bad");
    expect(bad).toMatchObject({
      isHealthy: false,
      ejectionReason: "consecutive-expiries",
      ejectedUntil: new Date(clock.now() + 60_000).toISOString(),
      ejections: 1,
    });
    expect(health.summary.ejectedPeers).toBe(1);

    const { types, samples } = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(types.get("omnirelay_peer_lease_ejections_total")).toBe("counter");
    expect(sampleValue(samples, "omnirelay_peer_lease_ejections_total")).toBe(1);
    expect(sampleValue(samples, "omnirelay_peer_lease_ejected ")).toBe(1);

    clock.advance(60_000);
    const after = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(sampleValue(after.samples, "omnirelay_peer_lease_ejected ")).toBe(0);
    expect(sampleValue(after.samples, "omnirelay_peer_lease_ejections_total")).toBe(1);
  });
});
