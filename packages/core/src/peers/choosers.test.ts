import { describe, expect, it } from "vitest";
import type { PeerHealthSnapshotProvider } from "../contracts/health.js";
import { FakeClock } from "../testing/fake-clock.js";
import { FewestPendingPeerChooser, RoundRobinPeerChooser, TwoRandomChoicesPeerChooser } from "./choosers.js";
import { BasicPeer } from "./peer.js";
import type { PeerChooser, PeerChooserOptions } from "./peer-chooser.js";
import { PeerList } from "./peer-list.js";
import { recordingLogger } from "./test-helpers.js";

const choosers: ReadonlyArray<readonly [string, (options: PeerChooserOptions) => PeerChooser]> = [
  ["RoundRobinPeerChooser", (o) => new RoundRobinPeerChooser(o)],
  ["FewestPendingPeerChooser", (o) => new FewestPendingPeerChooser(o)],
  ["TwoRandomChoicesPeerChooser", (o) => new TwoRandomChoicesPeerChooser(o)],
];

function peers(...specs: Array<{ id: string; maxConcurrency?: number; inflight?: number }>) {
  const list = new PeerList();
  const byId: Record<string, BasicPeer> = {};
  for (const spec of specs) {
    const peer = new BasicPeer({
      id: spec.id,
      ...(spec.maxConcurrency ? { maxConcurrency: spec.maxConcurrency } : {}),
    });
    for (let i = 0; i < (spec.inflight ?? 0); i++) peer.tryAcquire();
    list.add(peer);
    byId[spec.id] = peer;
  }
  return { list, byId };
}

/** Lets pending promise continuations run (the acquire loop re-arms its timers there). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function advance(clock: FakeClock, totalMs: number, stepMs = 5): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    clock.advance(stepMs);
    await settle();
  }
}

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe("RoundRobinPeerChooser", () => {
  it("rotates through available peers", async () => {
    const { list } = peers({ id: "a" }, { id: "b" }, { id: "c" });
    const chooser = new RoundRobinPeerChooser({ peers: list });
    const picked: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lease = await chooser.acquire();
      picked.push(lease.peer.id);
      lease.release(true);
    }
    expect(picked).toEqual(["a", "b", "c", "a"]);
  });

  it("moves past a busy or unavailable peer and counts the busy skip", async () => {
    const { list, byId } = peers({ id: "a", maxConcurrency: 1, inflight: 1 }, { id: "b" }, { id: "c" });
    byId.b?.setState("unavailable");
    const chooser = new RoundRobinPeerChooser({ peers: list });
    expect((await chooser.acquire()).peer.id).toBe("c");
    expect(chooser.rejections()).toEqual({ unhealthy: 0, busy: 1 });
  });
});

describe("FewestPendingPeerChooser", () => {
  it("picks the peer with the fewest calls in flight", async () => {
    const { list } = peers({ id: "a", inflight: 3 }, { id: "b", inflight: 1 }, { id: "c", inflight: 2 });
    const chooser = new FewestPendingPeerChooser({ peers: list });
    for (let i = 0; i < 20; i++) {
      const lease = await chooser.acquire();
      expect(lease.peer.id).toBe("b");
      lease.release(true);
    }
  });

  it("breaks ties with the injected random source", async () => {
    const { list } = peers({ id: "a", inflight: 1 }, { id: "b" }, { id: "c" });
    const low = new FewestPendingPeerChooser({ peers: list, random: () => 0 });
    const mid = new FewestPendingPeerChooser({ peers: list, random: () => 0.5 });
    const first = await low.acquire();
    expect(first.peer.id).toBe("b");
    first.release(true);
    expect((await mid.acquire()).peer.id).toBe("c");
  });

  it("spreads ties across the tied peers", async () => {
    const { list } = peers({ id: "a" }, { id: "b" });
    const chooser = new FewestPendingPeerChooser({ peers: list });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const lease = await chooser.acquire();
      seen.add(lease.peer.id);
      lease.release(true);
    }
    expect([...seen].sort()).toEqual(["a", "b"]);
  });
});

describe("TwoRandomChoicesPeerChooser", () => {
  it("prefers the less loaded of the two random picks", async () => {
    const { list } = peers({ id: "a", inflight: 2 }, { id: "b" }, { id: "c", inflight: 1 });
    // i = 0 (a), j = 0 → shifted to 1 (b): b has fewer in flight.
    const first = new TwoRandomChoicesPeerChooser({ peers: list, random: () => 0 });
    expect((await first.acquire()).peer.id).toBe("b");
    // i = 2 (c), j = 0 (a): c has fewer in flight.
    const values = [0.9, 0];
    const second = new TwoRandomChoicesPeerChooser({ peers: list, random: () => values.shift() ?? 0 });
    expect((await second.acquire()).peer.id).toBe("c");
  });

  it("takes the first pick on a tie and falls back to the rest when it is busy", async () => {
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 }, { id: "b", maxConcurrency: 1, inflight: 1 });
    list.add(new BasicPeer({ id: "c" }));
    const chooser = new TwoRandomChoicesPeerChooser({ peers: list, random: () => 0 });
    // First pair (a, b) ties: a first, busy; then (b, c): c is less loaded.
    expect((await chooser.acquire()).peer.id).toBe("c");
    expect(chooser.rejections().busy).toBe(1);
  });
});

describe.each(choosers)("%s acquire loop", (_name, create) => {
  it("fails with peers.none_registered when the list is empty", async () => {
    const chooser = create({ peers: new PeerList() });
    await expect(chooser.acquire({ deadlineMs: 1_000 })).rejects.toMatchObject({
      status: "unavailable",
      code: "peers.none_registered",
    });
  });

  it("fails with peers.none_available when no peer is available and there is no deadline", async () => {
    const { list, byId } = peers({ id: "a" });
    byId.a?.setState("unavailable");
    await expect(create({ peers: list }).acquire()).rejects.toMatchObject({
      status: "unavailable",
      code: "peers.none_available",
    });
  });

  it("fails with peers.all_busy when every peer is at its limit", async () => {
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 }, { id: "b", maxConcurrency: 1, inflight: 1 });
    const chooser = create({ peers: list });
    await expect(chooser.acquire()).rejects.toMatchObject({ status: "resource-exhausted", code: "peers.all_busy" });
    expect(chooser.rejections()).toEqual({ unhealthy: 0, busy: 2 });
  });

  it("skips peers the health provider rejects and counts them", async () => {
    const { list } = peers({ id: "sick" }, { id: "well" });
    const health: PeerHealthSnapshotProvider = { snapshot: () => [], isPeerEligible: (id) => id !== "sick" };
    const chooser = create({ peers: list, health });
    for (let i = 0; i < 5; i++) {
      const lease = await chooser.acquire();
      expect(lease.peer.id).toBe("well");
      lease.release(true);
    }
    expect(chooser.rejections()).toEqual({ unhealthy: 5, busy: 0 });
    list.remove("well");
    await expect(chooser.acquire()).rejects.toMatchObject({ code: "peers.none_available" });
  });

  it("treats a peer as eligible when the health provider throws", async () => {
    const { list } = peers({ id: "a" });
    const logger = recordingLogger();
    const health: PeerHealthSnapshotProvider = {
      snapshot: () => [],
      isPeerEligible: () => {
        throw new Error("provider down");
      },
    };
    expect((await create({ peers: list, health, logger }).acquire()).peer.id).toBe("a");
    expect(logger.warnings).toHaveLength(1);
  });

  it("releases a lease only once", async () => {
    const { list, byId } = peers({ id: "a", inflight: 2 });
    const lease = await create({ peers: list }).acquire();
    expect(byId.a?.status.inflight).toBe(3);
    lease.release(false);
    lease.release(false);
    expect(byId.a?.status.inflight).toBe(2);
    expect(byId.a?.outcomes.failures).toBe(1);
  });

  it("waits up to the deadline and resolves when a busy peer frees a slot", async () => {
    const clock = new FakeClock();
    const { list } = peers({ id: "a", maxConcurrency: 1 });
    const chooser = create({ peers: list, clock });
    const held = await chooser.acquire();
    const waiting = track(chooser.acquire({ deadlineMs: 1_000 }));
    await advance(clock, 500);
    expect(waiting.settled).toBe(false);
    held.release(true);
    await settle();
    expect(waiting.settled).toBe(true);
    expect(waiting.error).toBeUndefined();
    expect((waiting.value as { peer: { id: string } }).peer.id).toBe("a");
    expect(clock.pendingTimers).toBe(0);
  });

  it("resolves a wait when an unavailable peer becomes available", async () => {
    const clock = new FakeClock();
    const { list, byId } = peers({ id: "a" });
    byId.a?.setState("unknown");
    const waiting = track(create({ peers: list, clock }).acquire({ deadlineMs: 1_000 }));
    await settle();
    expect(waiting.settled).toBe(false);
    byId.a?.setState("available");
    await settle();
    expect(waiting.error).toBeUndefined();
    expect(waiting.settled).toBe(true);
  });

  it("fails with peers.deadline_exceeded when nothing frees up in time", async () => {
    const clock = new FakeClock();
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 });
    const waiting = track(create({ peers: list, clock }).acquire({ deadlineMs: 100 }));
    await advance(clock, 95);
    expect(waiting.settled).toBe(false);
    await advance(clock, 10);
    expect(waiting.error).toMatchObject({ status: "deadline-exceeded", code: "peers.deadline_exceeded" });
    expect(clock.pendingTimers).toBe(0);
  });

  it("rejects with peers.cancelled when the signal aborts, and cleans up its timer", async () => {
    const clock = new FakeClock();
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 });
    const controller = new AbortController();
    const waiting = track(create({ peers: list, clock }).acquire({ deadlineMs: 10_000, signal: controller.signal }));
    await advance(clock, 20);
    expect(waiting.settled).toBe(false);
    controller.abort();
    await settle();
    expect(waiting.error).toMatchObject({ status: "cancelled", code: "peers.cancelled" });
    expect(clock.pendingTimers).toBe(0);
    await expect(create({ peers: list }).acquire({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: "peers.cancelled",
    });
  });

  it("maps a timeout abort to peers.deadline_exceeded", async () => {
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 });
    const controller = new AbortController();
    const pending = create({ peers: list, clock: new FakeClock() }).acquire({
      deadlineMs: 10_000,
      signal: controller.signal,
    });
    controller.abort(new DOMException("timed out", "TimeoutError"));
    await expect(pending).rejects.toMatchObject({ status: "deadline-exceeded", code: "peers.deadline_exceeded" });
  });

  it("rejects a negative deadline with peers.argument_invalid", async () => {
    const { list } = peers({ id: "a" });
    await expect(create({ peers: list }).acquire({ deadlineMs: -1 })).rejects.toMatchObject({
      status: "invalid-argument",
      code: "peers.argument_invalid",
      metadata: { field: "deadlineMs" },
    });
  });

  it("rejects invalid constructor options", () => {
    expect(() => create({ peers: new PeerList(), pollIntervalMs: 0 })).toThrowError(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "pollIntervalMs" } }),
    );
    expect(() => create({} as PeerChooserOptions)).toThrowError(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "peers" } }),
    );
  });
});

describe("deadline wait in real time", () => {
  it("resolves as soon as a held peer is released", async () => {
    const { list } = peers({ id: "a", maxConcurrency: 1 });
    const chooser = new RoundRobinPeerChooser({ peers: list, pollIntervalMs: 1_000 });
    const held = await chooser.acquire();
    const started = Date.now();
    const waiting = chooser.acquire({ deadlineMs: 300 });
    setTimeout(() => held.release(true), 20);
    const lease = await waiting;
    expect(lease.peer.id).toBe("a");
    // Woken by the release notification, not by the 1 s poll and not at the deadline.
    expect(Date.now() - started).toBeLessThan(250);
  });

  it("fails at the deadline", async () => {
    const { list } = peers({ id: "a", maxConcurrency: 1, inflight: 1 });
    const started = Date.now();
    await expect(new RoundRobinPeerChooser({ peers: list }).acquire({ deadlineMs: 60 })).rejects.toMatchObject({
      code: "peers.deadline_exceeded",
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });
});
