import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import type { PeerDisconnectAlert } from "./peer-lease-health-types.js";
import { eventFactory, pendingItem, recordingLogger, testPayload, token } from "./test-helpers.js";

function setup(gracePeriodMs = 30_000) {
  const clock = new FakeClock();
  const alerts: PeerDisconnectAlert[] = [];
  const logger = recordingLogger();
  const tracker = new PeerLeaseHealthTracker({ gracePeriodMs, clock, logger, onDisconnect: (a) => alerts.push(a) });
  return { clock, alerts, logger, tracker, event: eventFactory(clock) };
}

function peer(tracker: PeerLeaseHealthTracker, peerId: string) {
  const found = tracker.snapshot().find((s) => s.peerId === peerId);
  if (!found) throw new Error(`no snapshot for ${peerId}`);
  return found;
}

describe("PeerLeaseHealthTracker options", () => {
  it("rejects a negative or non-finite grace period with resourcelease.options.invalid", () => {
    for (const gracePeriodMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      try {
        new PeerLeaseHealthTracker({ gracePeriodMs });
        expect.unreachable();
      } catch (err) {
        expect(isOmniRelayError(err) && err.code).toBe("resourcelease.options.invalid");
        expect(isOmniRelayError(err) && err.status).toBe("invalid-argument");
        expect(isOmniRelayError(err) && err.metadata.option).toBe("gracePeriodMs");
      }
    }
  });

  it("defaults the grace period to 30 s", () => {
    const clock = new FakeClock();
    const tracker = new PeerLeaseHealthTracker({ clock });
    tracker.recordPoll("a");
    clock.advance(30_000);
    expect(tracker.isPeerEligible("a")).toBe(true);
    clock.advance(1);
    expect(tracker.isPeerEligible("a")).toBe(false);
  });

  it("rejects a blank peer id on direct calls", () => {
    const { tracker } = setup();
    expect(() => tracker.recordPoll("  ")).toThrowError(expect.objectContaining({ code: "peers.argument_invalid" }));
  });
});

describe("PeerLeaseHealthTracker liveness", () => {
  it("treats an unknown peer as eligible and reports nothing about it", () => {
    const { tracker } = setup();
    expect(tracker.isPeerEligible("nobody")).toBe(true);
    expect(tracker.snapshot()).toEqual([]);
  });

  it("evicts a peer whose signals stop for longer than the grace period and reactivates it on a heartbeat", () => {
    const { tracker, clock } = setup(1_000);
    tracker.recordLeaseAssignment("a", token(1));
    clock.advance(1_000);
    expect(peer(tracker, "a").isHealthy).toBe(true);
    clock.advance(1);
    expect(peer(tracker, "a").isHealthy).toBe(false);
    expect(tracker.isPeerEligible("a")).toBe(false);
    tracker.recordLeaseHeartbeat("a", token(1));
    expect(peer(tracker, "a").isHealthy).toBe(true);
    expect(tracker.isPeerEligible("a")).toBe(true);
    expect(peer(tracker, "a").lastHeartbeat).toBe(clock.now());
  });

  it("keeps an idle worker that only long-polls healthy", () => {
    const { tracker, clock } = setup(30_000);
    tracker.recordPoll("idle");
    tracker.recordPoll("silent");
    for (let i = 0; i < 12; i++) {
      clock.advance(10_000);
      tracker.recordPoll("idle");
    }
    expect(peer(tracker, "idle").isHealthy).toBe(true);
    expect(tracker.isPeerEligible("idle")).toBe(true);
    expect(peer(tracker, "silent").isHealthy).toBe(false);
    expect(tracker.isPeerEligible("silent")).toBe(false);
  });

  it("evicts and reactivates in real time", async () => {
    const tracker = new PeerLeaseHealthTracker({ gracePeriodMs: 40 });
    tracker.recordPoll("a");
    expect(tracker.isPeerEligible("a")).toBe(true);
    await sleep(90);
    expect(tracker.isPeerEligible("a")).toBe(false);
    tracker.recordPoll("a");
    expect(tracker.isPeerEligible("a")).toBe(true);
  });

  it("marks a disconnected peer ineligible, alerts once, and clears it on the next liveness signal", () => {
    const { tracker, clock, alerts } = setup();
    tracker.recordPoll("a");
    tracker.recordDisconnect("a", "socket closed");
    tracker.recordDisconnect("a", "socket closed again");
    expect(tracker.isPeerEligible("a")).toBe(false);
    expect(peer(tracker, "a")).toMatchObject({ isHealthy: false, lastDisconnect: clock.now() });
    expect(peer(tracker, "a").metadata["disconnect.reason"]).toBe("socket closed again");
    expect(alerts).toEqual([{ peerId: "a", reason: "socket closed", at: clock.now() }]);
    expect(tracker.stats().disconnects).toBe(1);
    clock.advance(5);
    tracker.recordPoll("a");
    expect(tracker.isPeerEligible("a")).toBe(true);
    tracker.recordDisconnect("a");
    expect(alerts.at(-1)).toEqual({ peerId: "a", reason: "unknown", at: clock.now() });
    expect(tracker.stats().disconnects).toBe(2);
  });

  it("never lets a throwing or rejecting disconnect callback escape", async () => {
    const warned: unknown[] = [];
    let twoWarnings!: () => void;
    const done = new Promise<void>((resolve) => {
      twoWarnings = resolve;
    });
    const logger = {
      ...recordingLogger(),
      warn(obj: object | string) {
        warned.push(obj);
        if (warned.length === 2) twoWarnings();
      },
    };
    const throwing = new PeerLeaseHealthTracker({
      logger,
      onDisconnect: () => {
        throw new Error("boom");
      },
    });
    expect(() => throwing.recordDisconnect("a")).not.toThrow();
    const rejecting = new PeerLeaseHealthTracker({
      logger,
      onDisconnect: (() => Promise.reject(new Error("async boom"))) as () => void,
    });
    expect(() => rejecting.recordDisconnect("b")).not.toThrow();
    await done;
    expect(warned).toEqual([
      expect.objectContaining({ peerId: "a", err: expect.objectContaining({ message: "boom" }) }),
      expect.objectContaining({ peerId: "b", err: expect.objectContaining({ message: "async boom" }) }),
    ]);
    expect(throwing.isPeerEligible("a")).toBe(false);
    expect(rejecting.isPeerEligible("b")).toBe(false);
  });

  it("merges gossip metadata; alive gossip clears a disconnect and left gossip disconnects", () => {
    const { tracker, clock, alerts } = setup(1_000);
    tracker.recordGossip("a", { "mesh.role": "worker", " ": "ignored", "mesh.region": "eu" });
    const gossiped = peer(tracker, "a");
    expect(gossiped.metadata).toEqual({ "mesh.role": "worker", "mesh.region": "eu" });
    // Known but never seen alive: eligible (as the original) but not reported healthy.
    expect(gossiped.isHealthy).toBe(false);
    expect(gossiped.lastHeartbeat).toBeUndefined();
    expect(tracker.isPeerEligible("a")).toBe(true);

    tracker.recordGossip("a", {}, { status: "left" });
    expect(tracker.isPeerEligible("a")).toBe(false);
    expect(alerts.map((a) => a.reason)).toEqual(["gossip-left"]);

    clock.advance(10);
    tracker.recordGossip("a", { "mesh.role": "dispatcher" }, { status: "alive" });
    expect(tracker.isPeerEligible("a")).toBe(true);
    expect(peer(tracker, "a")).toMatchObject({ isHealthy: true, lastHeartbeat: clock.now() });
    expect(peer(tracker, "a").metadata["mesh.role"]).toBe("dispatcher");
  });

  it("sorts snapshots by peer id and records resource metadata and counters", () => {
    const { tracker } = setup();
    tracker.recordLeaseAssignment("b", token(1), { resourceType: "table", resourceId: "orders" });
    tracker.recordLeaseAssignment("a", token(2));
    tracker.recordLeaseHeartbeat("a");
    tracker.recordPoll("c");
    expect(tracker.snapshot().map((s) => s.peerId)).toEqual(["a", "b", "c"]);
    expect(peer(tracker, "b").metadata).toEqual({ "resource.type": "table", "resource.id": "orders" });
    expect(tracker.stats()).toEqual({ assignments: 2, heartbeats: 1, disconnects: 0, ejections: 0 });
  });

  it("forgets a peer with its leases and pending reassignments", () => {
    const { tracker } = setup();
    tracker.recordLeaseAssignment("a", token(1));
    tracker.recordLeaseReleased("a", token(1), { requeued: true });
    tracker.recordLeaseAssignment("a", token(2));
    expect(tracker.forget("a")).toBe(true);
    expect(tracker.forget("a")).toBe(false);
    expect(tracker.snapshot()).toEqual([]);
    // A later grant of item 1 must not resurrect or miscount the forgotten peer.
    tracker.recordLeaseAssignment("b", token(1, 2));
    expect(tracker.snapshot().map((s) => [s.peerId, s.pendingReassignments])).toEqual([["b", 0]]);
  });
});

describe("PeerLeaseHealthTracker.observe", () => {
  it("follows a lease from grant through heartbeat to completion", () => {
    const { tracker, event, clock } = setup();
    tracker.observe(event("LeaseGranted", { peerId: "w1", ownership: token(1), payload: testPayload }));
    expect(peer(tracker, "w1").activeLeases).toEqual([token(1)]);
    expect(peer(tracker, "w1").metadata).toMatchObject({ "resource.type": "table", "resource.id": "orders" });
    clock.advance(20_000);
    tracker.observe(event("Heartbeat", { peerId: "w1", ownership: token(1) }));
    expect(peer(tracker, "w1").lastHeartbeat).toBe(clock.now());
    tracker.observe(event("Completed", { peerId: "w1", ownership: token(1), payload: testPayload }));
    expect(peer(tracker, "w1")).toMatchObject({ activeLeases: [], pendingReassignments: 0, isHealthy: true });
    expect(tracker.stats()).toEqual({ assignments: 1, heartbeats: 1, disconnects: 0, ejections: 0 });
  });

  it("keeps the reporter of a poison message healthy (fail without requeue)", () => {
    const { tracker, event, alerts } = setup();
    tracker.observe(event("LeaseGranted", { peerId: "w1", ownership: token(1) }));
    tracker.observe(
      event("Failed", {
        peerId: "w1",
        ownership: token(1),
        error: { message: "poison" },
        metadata: { "failure.requeued": "false" },
      }),
    );
    tracker.observe(event("DeadLettered", { item: pendingItem(1), metadata: { "deadletter.reason": "failed" } }));
    const w1 = peer(tracker, "w1");
    expect(w1).toMatchObject({ isHealthy: true, activeLeases: [], pendingReassignments: 0 });
    expect(w1.lastDisconnect).toBeUndefined();
    expect(tracker.isPeerEligible("w1")).toBe(true);
    expect(alerts).toEqual([]);
    expect(tracker.stats().disconnects).toBe(0);
  });

  it("counts a pending reassignment until the item is granted again, to any peer", () => {
    const { tracker, event } = setup();
    tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(1) }));
    tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(2) }));
    tracker.observe(event("Failed", { peerId: "a", ownership: token(1), metadata: { "failure.requeued": "true" } }));
    tracker.observe(event("Requeued", { item: pendingItem(1) }));
    expect(peer(tracker, "a").pendingReassignments).toBe(1);
    // The original decremented when the same peer got *any* assignment; a different item changes nothing.
    tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(3) }));
    expect(peer(tracker, "a").pendingReassignments).toBe(1);
    tracker.observe(event("LeaseGranted", { peerId: "b", ownership: token(1, 2) }));
    expect(peer(tracker, "a").pendingReassignments).toBe(0);
    expect(peer(tracker, "b").pendingReassignments).toBe(0);
    expect(peer(tracker, "b").activeLeases).toEqual([token(1, 2)]);
    expect(peer(tracker, "a").activeLeases.map((t) => t.sequenceId)).toEqual([2, 3]);
  });

  it("resolves pending reassignments on dead-letter and on drain, and on an anonymous re-grant", () => {
    const { tracker, event } = setup();
    for (const seq of [1, 2, 3, 4]) tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(seq) }));
    for (const seq of [1, 2, 3, 4]) tracker.observe(event("LeaseExpired", { peerId: "a", ownership: token(seq) }));
    expect(peer(tracker, "a").pendingReassignments).toBe(4);
    tracker.observe(event("DeadLettered", { item: pendingItem(1), metadata: { "deadletter.reason": "expired" } }));
    expect(peer(tracker, "a").pendingReassignments).toBe(3);
    tracker.observe(event("DrainSnapshot", { items: [pendingItem(2), pendingItem(3)] }));
    expect(peer(tracker, "a").pendingReassignments).toBe(1);
    tracker.observe(event("LeaseGranted", { ownership: token(4, 2) }));
    expect(peer(tracker, "a").pendingReassignments).toBe(0);
  });

  it("removes expired leases and does not count an expiry as a liveness signal", () => {
    const { tracker, event, clock } = setup(30_000);
    tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(1) }));
    const grantedAt = clock.now();
    clock.advance(29_000);
    tracker.observe(event("LeaseExpired", { peerId: "a", ownership: token(1), payload: testPayload }));
    const a = peer(tracker, "a");
    expect(a.activeLeases).toEqual([]);
    expect(a.pendingReassignments).toBe(1);
    expect(a.lastHeartbeat).toBe(grantedAt);
    clock.advance(2_000);
    expect(tracker.isPeerEligible("a")).toBe(false);
  });

  it("does not leak leases over many expiries", () => {
    const { tracker, event } = setup();
    for (let seq = 1; seq <= 500; seq++) {
      tracker.observe(event("LeaseGranted", { peerId: "a", ownership: token(seq) }));
      tracker.observe(event("LeaseExpired", { peerId: "a", ownership: token(seq) }));
      tracker.observe(event("LeaseGranted", { peerId: "b", ownership: token(seq, 2) }));
      tracker.observe(event("Completed", { peerId: "b", ownership: token(seq, 2) }));
    }
    const snapshot = tracker.snapshot();
    expect(snapshot.map((s) => [s.peerId, s.activeLeases.length, s.pendingReassignments])).toEqual([
      ["a", 0, 0],
      ["b", 0, 0],
    ]);
  });

  it("re-adds a lease it missed from a heartbeat but never lets a stale token replace a newer grant", () => {
    const { tracker, event } = setup();
    tracker.observe(event("Heartbeat", { peerId: "a", ownership: token(1, 1, 10) }));
    expect(peer(tracker, "a").activeLeases).toEqual([token(1, 1, 10)]);
    tracker.observe(event("LeaseGranted", { peerId: "b", ownership: token(1, 2, 20) }));
    expect(peer(tracker, "a").activeLeases).toEqual([]);
    tracker.observe(event("Heartbeat", { peerId: "a", ownership: token(1, 1, 10) }));
    expect(peer(tracker, "a").activeLeases).toEqual([]);
    expect(peer(tracker, "b").activeLeases).toEqual([token(1, 2, 20)]);
  });

  it("ignores events without a peer id for peer state", () => {
    const { tracker, event } = setup();
    tracker.observe(event("LeaseGranted", { ownership: token(1) }));
    tracker.observe(event("Heartbeat", { ownership: token(1) }));
    tracker.observe(event("Failed", { peerId: "", ownership: token(1), metadata: { "failure.requeued": "true" } }));
    tracker.observe(event("Enqueue", { item: pendingItem(5, 1) }));
    expect(tracker.snapshot()).toEqual([]);
    expect(tracker.stats()).toEqual({ assignments: 0, heartbeats: 0, disconnects: 0, ejections: 0 });
  });

  it("uses the event time, so replayed old events do not make a peer look alive", () => {
    const { tracker, event, clock } = setup(30_000);
    const old = event("LeaseGranted", { peerId: "a", ownership: token(1), timestamp: clock.now() - 60_000 });
    tracker.observe(old);
    expect(peer(tracker, "a").lastHeartbeat).toBe(clock.now() - 60_000);
    expect(tracker.isPeerEligible("a")).toBe(false);
    // A timestamp from a clock running ahead is clamped to now.
    tracker.observe(event("Heartbeat", { peerId: "a", timestamp: clock.now() + 60_000 }));
    expect(peer(tracker, "a").lastHeartbeat).toBe(clock.now());
  });

  it("never throws on a malformed event", () => {
    const { tracker, event, logger } = setup();
    const broken = event("DrainSnapshot", { items: 42 as unknown as [] });
    expect(() => tracker.observe(broken)).not.toThrow();
    expect(logger.warnings).toHaveLength(1);
  });
});
