import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const LEASE_MS = 1000;
const LOCK_DELAY_MS = 5000;
const options = { leaseDurationMs: LEASE_MS, lockDelayMs: LOCK_DELAY_MS };

/**
 * One item through everything that can happen to it: enqueued by a producer, leased by "a" (three heartbeats), left to
 * expire into a lock-delay, granted to "b" after it, refused when "a" completes late with its stale token, failed by
 * "b" into the dead-letter set, redriven by an operator, granted to "c" and completed.
 */
async function scriptedItem() {
  const f = fixture(options);
  const t0 = f.clock.now();
  await f.queue.enqueue(item(4711, { requestId: "job-4711" }), { peerId: "producer", principal: "svc-producer" });
  await f.queue.enqueue(item(9)); // another item, whose story must not mix in
  const [a] = await f.queue.lease({ peerId: "a" });
  const [other] = await f.queue.lease({ peerId: "other" });
  expect(other?.sequenceId).not.toBe(a!.sequenceId);
  for (let i = 0; i < 3; i++) {
    f.clock.advance(100);
    await f.queue.heartbeat(a!.ownershipToken, { peerId: "a" });
  }
  await f.queue.complete(other!.ownershipToken, { peerId: "other" });
  f.clock.advance(LEASE_MS); // expires: the lock-delay starts
  f.clock.advance(LOCK_DELAY_MS);
  const [b4711] = await f.queue.lease({ peerId: "b" });
  expect(b4711?.sequenceId).toBe(a!.sequenceId);
  f.clock.advance(10);
  const refusedAt = f.clock.now();
  const refused = await rejection(f.queue.complete(a!.ownershipToken, { peerId: "a", principal: "svc-a" }));
  expect(refused.code).toBe(ErrorCodes.resourceLease.leaseFenced);
  await f.queue.fail(b4711!.ownershipToken, { peerId: "b", reason: "bad input", errorCode: "app.bad", requeue: false });
  await f.queue.redrive({ sequenceIds: [a!.sequenceId], peerId: "operator" });
  const [c] = await f.queue.lease({ peerId: "c" });
  await f.queue.complete(c!.ownershipToken, { peerId: "c" });
  return { ...f, t0, a: a!, b: b4711!, c: c!, refusedAt };
}

describe("every item's lease history", () => {
  it("tells a scripted item's whole story in order, including the stale caller's refusal", async () => {
    const f = await scriptedItem();
    const story = f.queue.history({ sequenceId: f.a.sequenceId });
    expect(story.sequenceId).toBe(f.a.sequenceId);
    expect(story.requestId).toBe("job-4711");
    expect(story.droppedEntries).toBe(0);
    expect(story.entries.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "LeaseExpired",
      "Requeued",
      "LeaseGranted",
      "LeaseRefused",
      "Failed",
      "DeadLettered",
      "Redriven",
      "LeaseGranted",
      "Completed",
    ]);
    const [enq, grantA, beats, expiry, , grantB, refusal, failed, dead, redriven, grantC, done] = story.entries;
    // An entry carries the fields that apply to it, and no key for those that do not.
    for (const entry of story.entries) expect(Object.values(entry)).not.toContain(undefined);
    expect(Object.keys(enq ?? {}).sort()).toEqual([
      "at",
      "attempt",
      "eventType",
      "peerId",
      "principal",
      "sequenceNumber",
    ]);
    expect(enq).toMatchObject({ at: f.t0, peerId: "producer", principal: "svc-producer", attempt: 1 });
    expect(grantA).toMatchObject({
      peerId: "a",
      attempt: 1,
      fencingToken: f.a.ownershipToken.fencingToken,
      leaseExpiresAt: f.a.leaseExpiresAt,
    });
    expect(beats).toMatchObject({
      peerId: "a",
      heartbeatCount: 3,
      at: f.t0 + 100,
      lastHeartbeatAt: f.t0 + 300,
      leaseExpiresAt: f.t0 + 300 + LEASE_MS,
    });
    expect(expiry).toMatchObject({ peerId: "a", fencingToken: f.a.ownershipToken.fencingToken });
    expect(expiry?.metadata?.["lease.lock_delay_ms"]).toBe(String(LOCK_DELAY_MS));
    expect(expiry?.error?.code).toBe(ErrorCodes.resourceLease.leaseExpired);
    expect(grantB).toMatchObject({ peerId: "b", attempt: 2, fencingToken: f.b.ownershipToken.fencingToken });
    expect(refusal).toMatchObject({
      peerId: "a",
      principal: "svc-a",
      at: f.refusedAt,
      attempt: 1,
      fencingToken: f.a.ownershipToken.fencingToken,
      metadata: { "refused.verb": "complete", "refused.code": ErrorCodes.resourceLease.leaseFenced },
    });
    expect(failed).toMatchObject({ peerId: "b", error: { message: "bad input", code: "app.bad" } });
    expect(dead?.metadata?.["deadletter.reason"]).toBe("failed");
    expect(redriven).toMatchObject({ peerId: "operator", attempt: 1 });
    expect(grantC).toMatchObject({ peerId: "c", fencingToken: f.c.ownershipToken.fencingToken });
    expect(done).toMatchObject({ peerId: "c", fencingToken: f.c.ownershipToken.fencingToken });
    // Sequence numbers are the log's, in order; no queue counters leak into an entry.
    const numbers = story.entries.map((e) => e.sequenceNumber);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(story.entries.every((e) => e.metadata?.["queue.pending"] === undefined)).toBe(true);
    // By request id: the same story.
    expect(f.queue.history({ requestId: "job-4711" })).toEqual(story);
  });

  it("replicates the refusal as an audit-only LeaseRefused event, and a rebuilt queue tells the same story", async () => {
    const f = await scriptedItem();
    const refusals = f.events.filter((e) => e.eventType === "LeaseRefused");
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      peerId: "a",
      ownership: f.a.ownershipToken,
      metadata: { "refused.verb": "complete", "refused.code": ErrorCodes.resourceLease.leaseFenced },
    });
    const rebuilt = await ResourceLeaseQueue.rebuild(f.events, { ...options, clock: f.clock });
    expect(rebuilt.snapshot()).toEqual(f.queue.snapshot()); // the refusal changed no state
    expect(rebuilt.history({ sequenceId: f.a.sequenceId })).toEqual(f.queue.history({ sequenceId: f.a.sequenceId }));
    await rebuilt.close();
  });

  it("records a refused heartbeat and fail of a stale token with their verbs, but not an unknown token", async () => {
    const f = fixture(options);
    await f.queue.enqueue(item(1));
    const [a] = await f.queue.lease({ peerId: "a" });
    await f.queue.complete(a!.ownershipToken, { peerId: "a" });
    await rejection(f.queue.heartbeat(a!.ownershipToken, { peerId: "a" }));
    await rejection(f.queue.fail(a!.ownershipToken, { peerId: "a" }));
    const bogus = { ...a!.ownershipToken, fencingToken: 999, sequenceId: 999 };
    expect((await rejection(f.queue.heartbeat(bogus))).code).toBe(ErrorCodes.resourceLease.leaseUnknownToken);
    const entries = f.queue.history({ sequenceId: a!.sequenceId }).entries;
    expect(entries.filter((e) => e.eventType === "LeaseRefused").map((e) => e.metadata?.["refused.verb"])).toEqual([
      "heartbeat",
      "fail",
    ]);
    expect(f.types().filter((t) => t === "LeaseRefused")).toHaveLength(2);
  });

  it("keeps at most maxItems stories (the least recently touched leaves) and maxEntriesPerItem entries", async () => {
    const f = fixture({ history: { maxItems: 2, maxEntriesPerItem: 3 } });
    await f.queue.enqueue(item(1, { requestId: "r1" }));
    await f.queue.enqueue(item(2));
    const [first] = await f.queue.lease({ peerId: "a" }); // touches item 1: item 2 is now the oldest
    await f.queue.enqueue(item(3));
    expect((await rejection(Promise.resolve().then(() => f.queue.history({ sequenceId: 2 })))).code).toBe(
      ErrorCodes.resourceLease.itemNotFound,
    );
    expect(f.queue.history({ requestId: "r1" }).sequenceId).toBe(first!.sequenceId);
    await f.queue.fail(first!.ownershipToken, { peerId: "a" }); // Failed + Requeued: 4 entries, the bound is 3
    const story = f.queue.history({ sequenceId: first!.sequenceId });
    expect(story.entries.map((e) => e.eventType)).toEqual(["Enqueue", "Failed", "Requeued"]);
    expect(story.droppedEntries).toBe(1);
  });

  it("evicts in the order of last touch, whichever story is touched (oldest, middle or newest)", async () => {
    const f = fixture({ history: { maxItems: 3 } });
    const held = () =>
      [1, 2, 3, 4, 5, 6, 7].filter((id) => {
        try {
          return f.queue.history({ sequenceId: id }).sequenceId === id;
        } catch {
          return false;
        }
      });
    for (const id of [1, 2, 3]) await f.queue.enqueue(item(id)); // touched: 1 2 3
    const [one] = await f.queue.lease({ peerId: "a" }); // the oldest: 2 3 1
    const [two] = await f.queue.lease({ peerId: "a" }); // the middle: 3 1 2
    await f.queue.heartbeat(one!.ownershipToken, { peerId: "a" }); // the middle again: 3 2 1
    await f.queue.heartbeat(one!.ownershipToken, { peerId: "a" }); // the newest: unchanged
    await f.queue.enqueue(item(4)); // evicts 3: 2 1 4
    expect(held()).toEqual([1, 2, 4]);
    await f.queue.heartbeat(two!.ownershipToken, { peerId: "a" }); // 1 4 2
    await f.queue.enqueue(item(5)); // evicts 1: 4 2 5
    await f.queue.enqueue(item(6)); // evicts 4: 2 5 6
    expect(held()).toEqual([2, 5, 6]);
    await f.queue.complete(two!.ownershipToken, { peerId: "a" }); // 5 6 2
    await f.queue.enqueue(item(7)); // evicts 5: 6 2 7
    expect(held()).toEqual([2, 6, 7]);
    expect(f.queue.history({ sequenceId: 2 }).entries.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "Completed",
    ]);
  });

  it("tells a new item's story with nothing of the evicted stories whose entries it reuses", async () => {
    const f = fixture({ history: { maxItems: 1 } });
    await f.queue.enqueue(item(1, { requestId: "old" }), { peerId: "p", principal: "svc" });
    const [grant] = await f.queue.lease({ peerId: "a" });
    await f.queue.heartbeat(grant!.ownershipToken, { peerId: "a" });
    await f.queue.fail(grant!.ownershipToken, { peerId: "a", reason: "boom", errorCode: "app.x", requeue: false });
    const told = f.queue.history({ sequenceId: grant!.sequenceId });
    expect(told.entries.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "Failed",
      "DeadLettered",
    ]);
    // A story told earlier is a copy: later reuse of its entries does not change it.
    const before = structuredClone(told);
    for (let i = 2; i < 6; i++) await f.queue.enqueue(item(i)); // each evicts the one before, entries and all
    expect(told).toEqual(before);
    const story = f.queue.history({ sequenceId: 5 });
    expect(story).toEqual({
      sequenceId: 5,
      entries: [{ eventType: "Enqueue", sequenceNumber: expect.any(Number), at: f.clock.now(), attempt: 1 }],
      droppedEntries: 0,
    });
    expect(Object.keys(story.entries[0] ?? {}).sort()).toEqual(["at", "attempt", "eventType", "sequenceNumber"]);
    expect(() => f.queue.history({ requestId: "old" })).toThrow();
  });

  it("answers bad targets with coded errors and is off with maxItems 0", async () => {
    const f = fixture({ history: { maxItems: 0 } });
    await f.queue.enqueue(item(1));
    const off = await rejection(Promise.resolve().then(() => f.queue.history({ sequenceId: 1 })));
    expect(off.code).toBe(ErrorCodes.resourceLease.itemNotFound);
    for (const bad of [{}, { sequenceId: 1, requestId: "x" }, { sequenceId: -1 }, { sequenceId: 1.5 }]) {
      const error = await rejection(Promise.resolve().then(() => f.queue.history(bad)));
      expect(error.status).toBe("invalid-argument");
    }
    expect(() => new ResourceLeaseQueue({ history: { maxEntriesPerItem: 1 } })).toThrow(/history.maxEntriesPerItem/);
  });
});
