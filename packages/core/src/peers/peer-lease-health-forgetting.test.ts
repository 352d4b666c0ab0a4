import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import type { PeerLeaseHealthTrackerOptions } from "./peer-lease-health-types.js";
import { eventFactory, pendingItem, token } from "./test-helpers.js";

// A tracker fed made-up peer ids (one empty lease poll each) must stay bounded: idle peers are forgotten after
// `forgetIdleAfterMs` and never more than `maxPeers` are kept, but a peer that holds a lease is never dropped.

function setup(options: PeerLeaseHealthTrackerOptions = {}) {
  const clock = new FakeClock();
  const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 1_000, ...options });
  return { clock, tracker, event: eventFactory(clock) };
}

const ids = (tracker: PeerLeaseHealthTracker) => tracker.snapshot().map((s) => s.peerId);

describe("PeerLeaseHealthTracker forgets idle peers", () => {
  it("forgets many one-shot peers after the age and holds the cap, keeping a peer with a lease", () => {
    const { clock, tracker } = setup({ maxPeers: 100 });
    tracker.recordLeaseAssignment("worker", token(1));
    for (let i = 0; i < 5_000; i++) {
      tracker.recordPoll(`probe-${i}`);
      if (i % 10 === 0) clock.advance(1);
    }
    const capped = ids(tracker);
    expect(capped).toHaveLength(100);
    expect(capped).toContain("worker");
    // The least recently heard-of idle peers went first: the newest probes are the ones kept.
    expect(capped).toContain("probe-4999");
    expect(capped).not.toContain("probe-0");
    // Past the age (default 4 × grace) plus one sweep interval: every probe is gone, the lease holder stays.
    clock.advance(4_000 + 1_000 + 1);
    tracker.recordPoll("latecomer");
    expect(ids(tracker)).toEqual(["latecomer", "worker"]);
    expect(tracker.snapshot().find((s) => s.peerId === "worker")?.activeLeases).toEqual([token(1)]);
    // Forgotten means unknown again: eligible, like a new peer.
    expect(tracker.isPeerEligible("probe-4999")).toBe(true);
    // Once its lease ends and it stays silent, the worker goes too.
    tracker.recordLeaseReleased("worker", token(1), { requeued: false });
    clock.advance(5_001);
    expect(ids(tracker)).toEqual([]);
  });

  it("keeps a peer until the age has passed, and keeps one that keeps polling", () => {
    const { clock, tracker } = setup({ forgetIdleAfterMs: 10_000 });
    tracker.recordPoll("silent");
    tracker.recordDisconnect("gone", "socket closed");
    for (let t = 0; t < 10_000; t += 500) {
      tracker.recordPoll("poller");
      clock.advance(500);
    }
    expect(ids(tracker)).toEqual(["gone", "poller", "silent"]); // exactly 10 s: not past the age yet
    clock.advance(2_501); // past the age plus a sweep interval (a quarter of the age)
    expect(ids(tracker)).toEqual(["poller"]);
  });

  it("evicts the least recently heard-of idle peer first at the cap; peers with leases or pending work never", () => {
    const { clock, tracker, event } = setup({ maxPeers: 3 });
    tracker.recordPoll("a");
    tracker.observe(event("LeaseGranted", { peerId: "b", ownership: token(1) }));
    tracker.observe(event("LeaseGranted", { peerId: "c", ownership: token(2) }));
    tracker.observe(event("LeaseExpired", { peerId: "c", ownership: token(2) })); // pending reassignment
    clock.advance(10);
    tracker.recordPoll("a");
    tracker.recordPoll("d"); // the cap: only "a" is idle
    expect(ids(tracker)).toEqual(["b", "c", "d"]);
    tracker.recordPoll("e"); // nothing idle but "d": it goes
    expect(ids(tracker)).toEqual(["b", "c", "e"]);
    tracker.observe(event("LeaseGranted", { peerId: "f", ownership: token(3) }));
    tracker.recordPoll("g"); // "e" is the only idle peer: busy ones may take the count past the cap
    expect(ids(tracker)).toEqual(["b", "c", "f", "g"]);
  });

  it("keeps an ejected peer while its ejection and back-off count", () => {
    const ejection = {
      consecutiveExpiries: 1,
      baseEjectionMs: 30_000,
      maxEjectionMs: 60_000,
      expiryRate: false as const,
    };
    const { clock, tracker, event } = setup({ ejection });
    tracker.recordPoll("other"); // a sole peer is never ejected
    tracker.observe(event("LeaseGranted", { peerId: "bad", ownership: token(1) }));
    tracker.observe(event("LeaseExpired", { peerId: "bad", ownership: token(1) }));
    tracker.observe(event("DeadLettered", { item: pendingItem(1) })); // no pending reassignment left
    expect(tracker.ejection("bad")).toBeDefined();
    clock.advance(30_000 + 60_000); // ejected until +30 s, its back-off counts 60 s more
    expect(ids(tracker)).toEqual(["bad"]);
    clock.advance(1_001);
    expect(ids(tracker)).toEqual([]);
  });

  it("rejects a forget age under the grace period and a cap under 1", () => {
    for (const options of [{ forgetIdleAfterMs: 999 }, { forgetIdleAfterMs: Number.NaN }, { maxPeers: 0 }]) {
      try {
        setup(options);
        expect.unreachable();
      } catch (err) {
        expect(isOmniRelayError(err) && err.code).toBe("resourcelease.options.invalid");
        expect(isOmniRelayError(err) && err.metadata.option).toBe(Object.keys(options)[0]);
      }
    }
  });
});
