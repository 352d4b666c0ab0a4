import { describe, expect, it } from "vitest";
import { ResourceLeaseEventTypes, type ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeaseGrant, ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { ResourceLeaseQueueOptions } from "./options.js";
import { ResourceLeaseQueue } from "./queue.js";
import {
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseSnapshotInPieces,
  type ResourceLeaseSnapshotPiece,
  splitSnapshot,
} from "./snapshot.js";
import { item, rejection } from "./test-helpers.js";

/** Small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Drives a queue through a random mix of every operation and returns the events it produced. */
async function randomWorkload(seed: number, options: ResourceLeaseQueueOptions) {
  const clock = new FakeClock();
  const events: ResourceLeaseReplicationEvent[] = [];
  const queue = new ResourceLeaseQueue({ ...options, clock, observers: [(e) => events.push(e)] });
  const rand = prng(seed);
  const held: ResourceLeaseGrant[] = [];
  let drained: ResourceLeasePendingItem[] = [];
  for (let step = 0; step < 600; step++) {
    const r = rand();
    const pick = () => held.splice(Math.floor(rand() * held.length), 1)[0];
    try {
      if (r < 0.3) {
        const requestId = rand() < 0.2 ? `req-${Math.floor(rand() * 20)}` : undefined;
        // Priorities, due times (absolute or a delay) and tenants: every input the grant order depends on.
        const when = rand();
        const schedule =
          when < 0.15 ? { notBefore: clock.now() + Math.floor(rand() * 900) } : when < 0.3 ? { delayMs: 400 } : {};
        await queue.enqueue(
          item(step, {
            partitionKey: `p${Math.floor(rand() * 4)}`,
            ...(requestId ? { requestId } : {}),
            ...(rand() < 0.5 ? { priority: Math.floor(rand() * 5) - 2 } : {}),
            ...(rand() < 0.8 ? { attributes: { tenant: rand() < 0.7 ? "big" : `t${Math.floor(rand() * 3)}` } } : {}),
            ...schedule,
          }),
        );
      } else if (r < 0.5) {
        held.push(
          ...(await queue.lease({ maxItems: 1 + Math.floor(rand() * 3), peerId: `w${Math.floor(rand() * 3)}` })),
        );
      } else if (r < 0.6 && held.length) {
        await queue.complete(pick()!.ownershipToken);
      } else if (r < 0.7 && held.length) {
        await queue.fail(pick()!.ownershipToken, { requeue: rand() < 0.8, reason: "r" });
      } else if (r < 0.75 && held.length) {
        await queue.heartbeat(held[Math.floor(rand() * held.length)]!.ownershipToken);
      } else if (r < 0.85) {
        clock.advance(Math.floor(rand() * 400));
      } else if (r < 0.88) {
        // Sometimes a page at a time, as the wire's drain does.
        drained.push(...(await queue.drain(rand() < 0.5 ? { maxItems: 1 + Math.floor(rand() * 3) } : {})));
      } else if (r < 0.92) {
        await queue.restore(drained);
        drained = [];
      } else if (r < 0.95) {
        await queue.redrive({ sequenceIds: queue.deadLetters({ limit: 2 }).map((d) => d.sequenceId) });
      } else if (r < 0.965) {
        // Cancel a held lease, a pending item, or one by request id.
        const target = held.length && rand() < 0.5 ? { sequenceId: pick()!.sequenceId } : undefined;
        await queue.cancel(
          target ??
            (rand() < 0.5
              ? { requestId: `req-${Math.floor(rand() * 20)}` }
              : { sequenceId: 1 + Math.floor(rand() * step) }),
        );
      } else if (r < 0.98) {
        const backfill = (["skip", "latest", "all"] as const)[Math.floor(rand() * 3)]!;
        await queue.schedules.set({
          id: `s${Math.floor(rand() * 2)}`,
          cron: "*/10 * * * * *",
          payload: item("cron"),
          backfill,
        });
      } else if (r < 0.985) {
        await queue.schedules.remove(`s${Math.floor(rand() * 2)}`);
      } else {
        clock.advance(10_000); // a slot of the schedules
      }
    } catch (error) {
      // Draining refusals and fenced tokens are part of the workload; anything else is a bug.
      const code = (error as { code?: string }).code;
      const expected: readonly string[] = [
        ErrorCodes.resourceLease.draining,
        ErrorCodes.resourceLease.leaseFenced,
        ErrorCodes.resourceLease.leaseCancelled,
        ErrorCodes.resourceLease.itemNotFound,
        ErrorCodes.resourceLease.scheduleNotFound,
      ];
      if (!expected.includes(code ?? "")) throw error;
    }
  }
  if (queue.stats().state === "draining") await queue.restore(drained); // end serving, so both go on alike
  return { queue, events, clock };
}

const variants: Array<[string, ResourceLeaseQueueOptions]> = [
  [
    "fifo",
    {
      leaseDurationMs: 1000,
      maxAttempts: 3,
      retryBackoff: { initialDelayMs: 150 },
      deadLetters: { maxCount: 2, maxAgeMs: 3_000 },
    },
  ],
  [
    "ordered partitions",
    { leaseDurationMs: 800, maxAttempts: 2, orderedPartitions: true, deadLetters: { maxBytes: 30 } },
  ],
  [
    "per-tenant caps, rate, fair sharing and priority aging",
    {
      leaseDurationMs: 900,
      maxAttempts: 3,
      retryBackoff: { initialDelayMs: 100 },
      priorityAging: { msPerLevel: 500 },
      deadLetters: { maxCount: 2 },
      keys: {
        by: { attribute: "tenant" },
        maxActive: 3,
        maxActiveByKey: { big: 2 },
        rate: { grants: 4, intervalMs: 300 },
        fair: true,
        weights: { t0: 2 },
      },
    },
  ],
  ["lock-delay", { leaseDurationMs: 700, maxAttempts: 2, lockDelayMs: 300, deadLetters: { maxCount: 1 } }],
];

describe.each(variants)("rebuild from the event stream (%s)", (_name, options) => {
  it("rebuilds pending, active and dead-letter state exactly, and both queues go on alike", async () => {
    const { queue, events, clock } = await randomWorkload(7, options);
    const types = new Set(events.map((e) => e.eventType));
    // The workload must exercise every event type, or the comparison below proves less than it claims.
    expect([...types].sort()).toEqual(Object.keys(ResourceLeaseEventTypes).sort());
    expect(events.some((e) => e.metadata["schedule.slot"] !== undefined)).toBe(true); // slots fired too
    expect(events.some((e) => e.eventType === "Cancelled" && e.ownership)).toBe(true); // and a leased item was cancelled
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));

    const copy = structuredClone(events);
    const replica = await ResourceLeaseQueue.rebuild(copy, { ...options, clock }, { activeLeases: "keep" });
    expect(replica.snapshot()).toEqual(queue.snapshot());
    expect(replica.stats()).toEqual(queue.stats());
    expect(replica.keyStats({ top: 100 })).toEqual(queue.keyStats({ top: 100 }));

    // Both go on identically: same grants in the same order.
    const a = await queue.lease({ maxItems: 5 });
    const b = await replica.lease({ maxItems: 5 });
    expect(b.map((g) => [g.sequenceId, g.attempt, g.ownershipToken.fencingToken])).toEqual(
      a.map((g) => [g.sequenceId, g.attempt, g.ownershipToken.fencingToken]),
    );
  });

  it("a snapshot plus the events after it equals the whole stream", async () => {
    const { queue, events, clock } = await randomWorkload(11, options);
    const cut = Math.floor(events.length / 2);
    const head = await ResourceLeaseQueue.rebuild(
      events.slice(0, cut),
      { ...options, clock },
      { activeLeases: "keep" },
    );
    const fromSnapshot = await ResourceLeaseQueue.rebuild(
      events,
      { ...options, clock },
      { activeLeases: "keep", snapshot: structuredClone(head.snapshot()) },
    );
    expect(fromSnapshot.snapshot()).toEqual(queue.snapshot());
    expect(fromSnapshot.keyStats({ top: 100 })).toEqual(queue.keyStats({ top: 100 }));
    // With keys, the snapshot carried per-key dispatch state (rate windows, virtual times) that decides what comes next.
    if (options.keys) expect(head.snapshot().dispatch?.keys.length).toBeGreaterThan(0);
    const a = await queue.lease({ maxItems: 5 });
    const b = await fromSnapshot.lease({ maxItems: 5 });
    expect(b.map((g) => [g.sequenceId, g.ownershipToken.fencingToken])).toEqual(
      a.map((g) => [g.sequenceId, g.ownershipToken.fencingToken]),
    );
  });

  it("a snapshot handed over in pieces restores exactly what the whole snapshot does", async () => {
    const { queue, events, clock } = await randomWorkload(13, options);
    const cut = Math.floor(events.length / 2);
    const head = await ResourceLeaseQueue.rebuild(
      events.slice(0, cut),
      { ...options, clock },
      { activeLeases: "keep" },
    );
    const whole = await ResourceLeaseQueue.rebuild(
      events,
      { ...options, clock },
      { activeLeases: "keep", snapshot: structuredClone(head.snapshot()) },
    );
    const pieces = await ResourceLeaseQueue.rebuild(
      events,
      { ...options, clock },
      { activeLeases: "keep", snapshot: inPieces(structuredClone(head.snapshot()), 2) },
    );
    expect(pieces.snapshot()).toEqual(whole.snapshot());
    expect(pieces.snapshot()).toEqual(queue.snapshot());
    expect(pieces.keyStats({ top: 100 })).toEqual(whole.keyStats({ top: 100 }));
    const a = await whole.lease({ maxItems: 5 });
    const b = await pieces.lease({ maxItems: 5 });
    expect(b.map((g) => [g.sequenceId, g.ownershipToken.fencingToken])).toEqual(
      a.map((g) => [g.sequenceId, g.ownershipToken.fencingToken]),
    );
  });
});

/**
 * A snapshot split into pieces of at most `n` entries of one list each, the per-key dispatch state first (out of the
 * whole snapshot's order, which puts it after the items).
 */
function inPieces(snapshot: ResourceLeaseQueueSnapshot, n: number): ResourceLeaseSnapshotInPieces {
  const { head: rest, lists, dispatch } = splitSnapshot(snapshot);
  const out: ResourceLeaseSnapshotPiece[] = [];
  for (let i = 0; i < (dispatch?.keys.length ?? 0); i += n) out.push({ dispatchKeys: dispatch!.keys.slice(i, i + n) });
  for (const [name, list] of Object.entries(lists)) {
    for (let i = 0; i < (list?.length ?? 0); i += n) out.push({ [name]: list!.slice(i, i + n) });
  }
  return { head: { ...rest, ...(dispatch ? { dispatchVirtualTime: dispatch.vtime } : {}) }, pieces: out };
}

describe("recovery after a restart", () => {
  it("expires leases that were active, counts the attempt, and fences every old token", async () => {
    const clock = new FakeClock();
    const events: ResourceLeaseReplicationEvent[] = [];
    const options = { clock, leaseDurationMs: 60_000 };
    const before = new ResourceLeaseQueue({ ...options, observers: [(e) => events.push(e)] });
    await before.enqueueMany([item(1), item(2), item(3)]);
    const grants = await before.lease({ maxItems: 2, peerId: "w" });
    const maxToken = Math.max(...grants.map((g) => g.ownershipToken.fencingToken));

    const log: ResourceLeaseReplicationEvent[] = [...events];
    const after = await ResourceLeaseQueue.rebuild(events, {
      ...options,
      replicator: {
        async publish(batch) {
          log.push(...batch);
        },
      },
    });
    expect(after.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 0, lastFencingToken: maxToken });
    expect(log.slice(events.length).map((e) => e.eventType)).toEqual([
      "LeaseExpired",
      "Requeued",
      "LeaseExpired",
      "Requeued",
    ]);
    expect(log.map((e) => e.sequenceNumber)).toEqual(log.map((_, i) => i + 1));
    for (const g of grants)
      expect((await rejection(after.complete(g.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    const next = await after.lease({ maxItems: 3 });
    expect(next.map((g) => g.sequenceId)).toEqual([3, 1, 2]);
    expect(next.map((g) => g.attempt)).toEqual([1, 2, 2]);
    expect(Math.min(...next.map((g) => g.ownershipToken.fencingToken))).toBeGreaterThan(maxToken);
    const { sequenceIds } = await after.enqueue(item(4));
    expect(sequenceIds).toEqual([4]);
  });

  it("reports a gap or an impossible transition with its sequence number", async () => {
    const { events } = await randomWorkload(3, variants[0]![1]);
    const gap = [...events.slice(0, 5), ...events.slice(6)];
    const err = await rejection(ResourceLeaseQueue.rebuild(gap));
    expect(err.code).toBe(ErrorCodes.replication.replayMismatch);
    expect(err.metadata.sequenceNumber).toBe("7");
  });
});

describe("rebuild with lock-delay", () => {
  it("the random workload really completes items late in their lock-delay (what the lock-delay variant proves)", async () => {
    const options = variants.find(([name]) => name === "lock-delay")![1];
    const { events } = await randomWorkload(7, options);
    expect(events.filter((e) => e.metadata["lease.late"] === "lock_delay").length).toBeGreaterThan(0);
    expect(events.some((e) => e.metadata["lease.lock_delay_ms"] === "300")).toBe(true);
  });
});
