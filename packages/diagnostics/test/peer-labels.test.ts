import { ResourceLeaseQueue } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane as ControlPlane } from "../src/index.js";
import { closeAll, onClose, payload } from "./harness.js";

afterEach(closeAll);

async function start(maxPeerLabels: number) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const control = new ControlPlane({ clock, maxPeerLabels });
  const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 1_000 }); // forgets idle peers after 4 s
  const queue = new ResourceLeaseQueue({
    clock,
    leaseDurationMs: 60_000,
    observers: [(event) => tracker.observe(event), control.eventObserver("orders")],
  });
  control.addShard({ namespace: "orders", queue });
  control.addHealthProvider(tracker);
  const { url } = await control.listen();
  onClose(async () => {
    await control.close();
    await queue.close();
  });
  /** One item enqueued, leased by `peerId` and completed. */
  const work = async (peerId: string) => {
    await queue.enqueue(payload(peerId));
    const [grant] = await queue.lease({ peerId });
    await queue.complete(grant?.ownershipToken);
  };
  const metrics = async () => (await (await fetch(`${url}/metrics`)).text()).split("\n");
  const health = async (query = "") => {
    const res = await fetch(`${url}/omnirelay/control/lease-health${query}`);
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };
  return { clock, tracker, work, metrics, health };
}

describe("per-peer metric labels when peers come and go", () => {
  it("gives a later real worker its own label once the peers that took every label went idle", async () => {
    const { clock, work, metrics, health } = await start(3);
    for (const squatter of ["squatter-1", "squatter-2", "squatter-3"]) await work(squatter);
    expect((await metrics()).filter((l) => l.startsWith('omnirelay_peer_lease_grants_total{peer="squatter-'))).toEqual(
      [1, 2, 3].map((i) => `omnirelay_peer_lease_grants_total{peer="squatter-${i}"} 1`),
    );
    clock.advance(5_001); // the squatters are never heard of again: past the tracker's forget age and a sweep
    await work("real-worker");
    const lines = await metrics();
    expect(lines.filter((l) => l.startsWith("omnirelay_peer_lease_grants_total{"))).toEqual([
      'omnirelay_peer_lease_grants_total{peer="real-worker"} 1',
    ]);
    expect(lines).toContain('omnirelay_peer_lease_peers{peer="real-worker",state="healthy"} 1');
    expect(lines.filter((l) => l.includes('peer="squatter-') || l.includes('peer="_other"'))).toEqual([]);
    expect((await health()).json.peers.map((p: { peerId: string }) => p.peerId)).toEqual(["real-worker"]);
  });

  it("lists lease-health in pages of at most `limit` peers by id, the summary counting all of them", async () => {
    const { tracker, health } = await start(50);
    for (const id of ["e", "c", "a", "d", "b"]) tracker.recordPoll(id);
    const first = (await health("?limit=2")).json;
    expect(first.peers.map((p: { peerId: string }) => p.peerId)).toEqual(["a", "b"]);
    expect(first).toMatchObject({ totalPeers: 5, nextAfter: "b", summary: { eligiblePeers: 5, unhealthyPeers: 0 } });
    const last = (await health("?limit=2&after=d")).json;
    expect(last.peers.map((p: { peerId: string }) => p.peerId)).toEqual(["e"]);
    expect(last.nextAfter).toBeUndefined();
    expect((await health()).json.peers).toHaveLength(5);
    for (const bad of ["0", "1001", "x"]) {
      const refused = await health(`?limit=${bad}`);
      expect(refused.status).toBe(400);
      expect(refused.json).toMatchObject({ code: "resourcelease.argument.invalid", metadata: { field: "limit" } });
    }
  });
});
