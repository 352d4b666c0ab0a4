import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { FewestPendingPeerChooser, RoundRobinPeerChooser, TwoRandomChoicesPeerChooser } from "./choosers.js";
import { BasicPeer } from "./peer.js";
import type { PeerChooser, PeerChooserOptions } from "./peer-chooser.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import { PeerList } from "./peer-list.js";
import { eventFactory, token } from "./test-helpers.js";

// Chooser peers and tracker entries share one identity: the worker's lease peerId.
const choosers: ReadonlyArray<readonly [string, (options: PeerChooserOptions) => PeerChooser]> = [
  ["RoundRobinPeerChooser", (o) => new RoundRobinPeerChooser(o)],
  ["FewestPendingPeerChooser", (o) => new FewestPendingPeerChooser(o)],
  ["TwoRandomChoicesPeerChooser", (o) => new TwoRandomChoicesPeerChooser(o)],
];

function setup(create: (options: PeerChooserOptions) => PeerChooser) {
  const clock = new FakeClock();
  const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: 30_000, clock });
  const a = new BasicPeer({ id: "worker-a" });
  const b = new BasicPeer({ id: "worker-b", maxConcurrency: 1 });
  const list = new PeerList([a, b]);
  const chooser = create({ peers: list, health: tracker, clock });
  return { clock, tracker, a, b, chooser, event: eventFactory(clock) };
}

async function chosenIds(chooser: PeerChooser, times: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < times; i++) {
    const lease = await chooser.acquire();
    ids.add(lease.peer.id);
    lease.release(true);
  }
  return ids;
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe.each(choosers)("%s with PeerLeaseHealthTracker", (_name, create) => {
  it("skips a peer whose heartbeats stopped for longer than the grace period", async () => {
    const { clock, tracker, chooser } = setup(create);
    tracker.recordLeaseAssignment("worker-a", token(1));
    tracker.recordLeaseAssignment("worker-b", token(2));
    expect(await chosenIds(chooser, 20)).toEqual(new Set(["worker-a", "worker-b"]));
    clock.advance(20_000);
    tracker.recordLeaseHeartbeat("worker-b", token(2));
    clock.advance(10_001);
    expect(await chosenIds(chooser, 20)).toEqual(new Set(["worker-b"]));
    expect(chooser.rejections().unhealthy).toBe(20);
  });

  it("chooses the peer again after a fresh heartbeat", async () => {
    const { clock, tracker, b, chooser } = setup(create);
    tracker.recordLeaseAssignment("worker-a", token(1));
    clock.advance(30_001);
    tracker.recordPoll("worker-b");
    b.tryAcquire(); // worker-b is full: only worker-a could serve
    await expect(chooser.acquire()).rejects.toMatchObject({ code: "peers.all_busy" });
    tracker.recordLeaseHeartbeat("worker-a", token(1));
    expect((await chooser.acquire()).peer.id).toBe("worker-a");
  });

  it("chooses an idle worker that keeps long-polling", async () => {
    const { clock, tracker, b, chooser } = setup(create);
    b.setState("unavailable");
    for (let i = 0; i < 10; i++) {
      tracker.recordPoll("worker-a");
      clock.advance(20_000);
    }
    expect((await chooser.acquire()).peer.id).toBe("worker-a");
  });

  it("keeps a peer that reported a poison message in rotation", async () => {
    const { tracker, b, chooser, event } = setup(create);
    b.setState("unavailable");
    tracker.observe(event("LeaseGranted", { peerId: "worker-a", ownership: token(1) }));
    tracker.observe(
      event("Failed", { peerId: "worker-a", ownership: token(1), metadata: { "failure.requeued": "false" } }),
    );
    expect((await chooser.acquire()).peer.id).toBe("worker-a");
  });

  it("waits with a deadline until an evicted peer comes back", async () => {
    const { clock, tracker, b, chooser, event } = setup(create);
    tracker.recordPoll("worker-a");
    clock.advance(30_001);
    b.setState("unavailable");
    let chosen: string | undefined;
    const pending = chooser.acquire({ deadlineMs: 5_000 }).then((lease) => {
      chosen = lease.peer.id;
    });
    for (let i = 0; i < 10; i++) {
      clock.advance(5);
      await settle();
    }
    expect(chosen).toBeUndefined();
    // The queue grants worker-a a lease: its replication event reactivates the peer; the next poll picks it up.
    tracker.observe(event("LeaseGranted", { peerId: "worker-a", ownership: token(9) }));
    clock.advance(5);
    await pending;
    expect(chosen).toBe("worker-a");
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("eviction and reactivation in real time", () => {
  it("drops a silent peer after the grace period and takes it back after a poll", async () => {
    const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: 50 });
    const list = new PeerList([new BasicPeer({ id: "worker-a" }), new BasicPeer({ id: "worker-b" })]);
    const chooser = new RoundRobinPeerChooser({ peers: list, health: tracker });
    tracker.recordPoll("worker-a");
    tracker.recordPoll("worker-b");
    await sleep(100);
    tracker.recordPoll("worker-b");
    expect(await chosenIds(chooser, 4)).toEqual(new Set(["worker-b"]));
    tracker.recordPoll("worker-a");
    expect(await chosenIds(chooser, 4)).toEqual(new Set(["worker-a", "worker-b"]));
  });
});
