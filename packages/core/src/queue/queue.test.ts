import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

describe("enqueue and lease", () => {
  it("leases in FIFO order with strictly increasing fencing tokens", async () => {
    const { queue } = fixture();
    const { sequenceIds } = await queue.enqueueMany([item(1), item(2), item(3)]);
    expect(sequenceIds).toEqual([1, 2, 3]);
    const grants = await queue.lease({ maxItems: 3, peerId: "w1" });
    expect(grants.map((g) => g.payload.resourceId)).toEqual(["1", "2", "3"]);
    expect(grants.map((g) => g.ownershipToken.fencingToken)).toEqual([1, 2, 3]);
    expect(grants.every((g) => g.attempt === 1 && g.ownerPeerId === "w1")).toBe(true);
    expect(new Set(grants.map((g) => g.ownershipToken.leaseId)).size).toBe(3);
  });

  it("returns an empty list at once when nothing is pending and waitMs is 0", async () => {
    const { queue } = fixture();
    expect(await queue.lease()).toEqual([]);
    expect(await queue.lease({ waitMs: 0, maxItems: 5 })).toEqual([]);
  });

  it("a waiting lease gets an item enqueued later, and times out empty otherwise", async () => {
    const { queue, clock } = fixture();
    const waiting = queue.lease({ waitMs: 1000, peerId: "w" });
    await queue.enqueue(item("late"));
    const [grant] = await waiting;
    expect(grant?.payload.resourceId).toBe("late");
    const empty = queue.lease({ waitMs: 500 });
    clock.advance(499);
    let settled = false;
    void empty.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    clock.advance(1);
    expect(await empty).toEqual([]);
  });

  it("an aborted waiting lease rejects with cancelled and takes no item", async () => {
    const { queue } = fixture();
    const controller = new AbortController();
    const waiting = queue.lease({ waitMs: 10_000, signal: controller.signal });
    controller.abort();
    expect((await rejection(waiting)).code).toBe(ErrorCodes.resourceLease.cancelled);
    await queue.enqueue(item(1));
    expect(queue.stats().pendingCount).toBe(1);
  });

  it("rejects invalid payloads with a code naming the field, before any mutation", async () => {
    const { queue, events } = fixture();
    const err = await rejection(
      queue.enqueue({ resourceType: "t", resourceId: " ", partitionKey: "p", payloadEncoding: "json" }),
    );
    expect(err.status).toBe("invalid-argument");
    expect(err.code).toBe(ErrorCodes.resourceLease.payloadResourceIdRequired);
    expect(err.metadata.field).toBe("payload.resourceId");
    const batch = await rejection(queue.enqueueMany([item(1), { ...item(2), partitionKey: undefined }]));
    expect(batch.code).toBe(ErrorCodes.resourceLease.payloadPartitionKeyRequired);
    expect(batch.metadata.field).toBe("payloads[1].partitionKey");
    expect((await rejection(queue.enqueue(null))).code).toBe(ErrorCodes.resourceLease.payloadRequired);
    expect((await rejection(queue.lease({ maxItems: 0 }))).metadata.field).toBe("maxItems");
    expect(events).toHaveLength(0);
    expect(queue.stats().pendingCount).toBe(0);
  });

  it("refuses to grow past capacity, all or nothing", async () => {
    const { queue } = fixture({ capacity: 3 });
    await queue.enqueueMany([item(1), item(2)]);
    const err = await rejection(queue.enqueueMany([item(3), item(4)]));
    expect(err.status).toBe("resource-exhausted");
    expect(err.code).toBe(ErrorCodes.resourceLease.queueFull);
    expect(queue.stats().pendingCount).toBe(2);
    await queue.enqueue(item(3));
    expect(queue.stats().pendingCount).toBe(3);
  });

  it("rejects bad options at construction", () => {
    expect(() => new ResourceLeaseQueue({ capacity: 0 })).toThrowError(/capacity/);
    expect(() => new ResourceLeaseQueue({ leaseDurationMs: -1 })).toThrowError(/leaseDurationMs/);
    expect(() => new ResourceLeaseQueue({ maxAttempts: 0 })).toThrowError(/maxAttempts/);
  });
});

describe("fencing", () => {
  it("a token is fenced after its lease expired and the item was granted again", async () => {
    const { queue, clock } = fixture({ leaseDurationMs: 1000 });
    await queue.enqueue(item(1));
    const [first] = await queue.lease({ peerId: "a" });
    clock.advance(1000);
    const [second] = await queue.lease({ peerId: "b" });
    expect(second?.sequenceId).toBe(first?.sequenceId);
    expect(second?.attempt).toBe(2);
    expect(second!.ownershipToken.fencingToken).toBeGreaterThan(first!.ownershipToken.fencingToken);
    for (const call of [
      queue.complete(first!.ownershipToken),
      queue.heartbeat(first!.ownershipToken),
      queue.fail(first!.ownershipToken),
    ]) {
      const err = await rejection(call);
      expect(err.status).toBe("failed-precondition");
      expect(err.code).toBe(ErrorCodes.resourceLease.leaseFenced);
    }
    await queue.complete(second!.ownershipToken);
    expect(queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });

  it("a completed token cannot be used again, and a forged token is unknown", async () => {
    const { queue } = fixture();
    await queue.enqueue(item(1));
    const [grant] = await queue.lease();
    await queue.complete(grant!.ownershipToken);
    expect((await rejection(queue.complete(grant!.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    const forged = { ...grant!.ownershipToken, fencingToken: 99, leaseId: "x" };
    const err = await rejection(queue.heartbeat(forged));
    expect(err.status).toBe("not-found");
    expect(err.code).toBe(ErrorCodes.resourceLease.leaseUnknownToken);
    const tampered = { ...grant!.ownershipToken, attempt: 2 };
    expect((await rejection(queue.complete(tampered))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
  });

  it("rejects malformed tokens with invalid-argument naming the field", async () => {
    const { queue } = fixture();
    const err = await rejection(queue.complete({ sequenceId: 1, attempt: 1, leaseId: "x" }));
    expect(err.status).toBe("invalid-argument");
    expect(err.code).toBe(ErrorCodes.resourceLease.leaseTokenRequired);
    expect(err.metadata.field).toBe("ownershipToken.fencingToken");
  });

  it("binds a lease to its principal when asked", async () => {
    const { queue } = fixture({ bindLeasesToPrincipal: true });
    await queue.enqueue(item(1));
    const [grant] = await queue.lease({ principal: "spiffe://a" });
    const err = await rejection(queue.complete(grant!.ownershipToken, { principal: "spiffe://b" }));
    expect(err.status).toBe("permission-denied");
    expect(err.code).toBe(ErrorCodes.resourceLease.leasePrincipalMismatch);
    await queue.complete(grant!.ownershipToken, { principal: "spiffe://a" });
  });

  it("fencing tokens keep increasing across drain and restore", async () => {
    const { queue } = fixture();
    await queue.enqueueMany([item(1), item(2)]);
    const [g1] = await queue.lease();
    const drained = await queue.drain();
    await queue.restore(drained);
    const [g2] = await queue.lease();
    expect(g2!.ownershipToken.fencingToken).toBe(g1!.ownershipToken.fencingToken + 1);
  });
});

describe("lease deadlines", () => {
  it("expires exactly at the deadline with LeaseExpired + Requeued, using one timer for many leases", async () => {
    const { queue, clock, events } = fixture({ leaseDurationMs: 5000 });
    await queue.enqueueMany([item(1), item(2), item(3)]);
    await queue.lease({ maxItems: 3, peerId: "w" });
    expect(clock.pendingTimers).toBe(1);
    clock.advance(4999);
    expect(queue.stats().activeLeaseCount).toBe(3);
    clock.advance(1);
    expect(queue.stats()).toMatchObject({ activeLeaseCount: 0, pendingCount: 3 });
    const tail = events.slice(-6).map((e) => e.eventType);
    expect(tail).toEqual(["LeaseExpired", "Requeued", "LeaseExpired", "Requeued", "LeaseExpired", "Requeued"]);
    const [again] = await queue.lease();
    expect(again?.attempt).toBe(2);
    expect(again?.lastError?.code).toBe(ErrorCodes.resourceLease.leaseExpired);
  });

  it("a call that arrives after the deadline but before the timer ran is fenced", async () => {
    const { queue, clock } = fixture({ leaseDurationMs: 1000 });
    await queue.enqueue(item(1));
    const [grant] = await queue.lease();
    // Move time without firing timers: the check must use the deadline, not the timer.
    (clock as unknown as { current: number }).current += 1000;
    expect((await rejection(queue.complete(grant!.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    expect(queue.stats().pendingCount).toBe(1);
  });

  it("heartbeat always extends and returns the new deadline", async () => {
    const { queue, clock, events } = fixture({ leaseDurationMs: 1000 });
    await queue.enqueue(item(1));
    const [grant] = await queue.lease();
    clock.advance(10); // an early heartbeat still extends (the original ignored it)
    const hb = await queue.heartbeat(grant!.ownershipToken);
    expect(hb.leaseExpiresAt).toBe(clock.now() + 1000);
    expect(hb.remainingMs).toBe(1000);
    expect(events.at(-1)).toMatchObject({ eventType: "Heartbeat", leaseExpiresAt: hb.leaseExpiresAt });
    clock.advance(999);
    expect(queue.stats().activeLeaseCount).toBe(1);
    clock.advance(1);
    expect(queue.stats().activeLeaseCount).toBe(0);
  });

  it("expires a lease in real time", async () => {
    let onExpired!: () => void;
    const expired = new Promise<void>((resolve) => {
      onExpired = resolve;
    });
    const queue = new ResourceLeaseQueue({
      leaseDurationMs: 40,
      observers: [(e) => e.eventType === "LeaseExpired" && onExpired()],
    });
    await queue.enqueue(item(1));
    const started = Date.now();
    await queue.lease();
    await expired;
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
    await queue.close();
  });
});

describe("fail, retries and dead letters", () => {
  it("requeues with a backoff that is scheduled, never awaited", async () => {
    const { queue, clock, events } = fixture({ retryBackoff: { initialDelayMs: 1000, multiplier: 2 } });
    await queue.enqueue(item(1));
    const [g1] = await queue.lease();
    expect(await queue.fail(g1!.ownershipToken, { reason: "boom", errorCode: "app.boom" })).toBe("delayed");
    expect(events.at(-1)).toMatchObject({ eventType: "Failed", metadata: { "failure.requeued": "true" } });
    expect(queue.stats()).toMatchObject({ pendingCount: 1, delayedCount: 1 });
    expect(await queue.lease()).toEqual([]);
    clock.advance(1000);
    expect(events.at(-1)?.eventType).toBe("Requeued");
    const [g2] = await queue.lease();
    expect(g2).toMatchObject({ attempt: 2, lastError: { message: "boom", code: "app.boom" } });
    await queue.fail(g2!.ownershipToken);
    clock.advance(1999);
    expect(await queue.lease()).toEqual([]);
    clock.advance(1);
    expect(await queue.lease()).toHaveLength(1);
  });

  it("dead-letters after maxAttempts and says so in the Failed event", async () => {
    const { queue, events } = fixture({ maxAttempts: 2 });
    await queue.enqueue(item(1));
    const [g1] = await queue.lease();
    expect(await queue.fail(g1!.ownershipToken)).toBe("requeued");
    const [g2] = await queue.lease();
    expect(await queue.fail(g2!.ownershipToken, { requeue: true })).toBe("dead_lettered");
    const failed = events.filter((e) => e.eventType === "Failed");
    expect(failed.map((e) => e.metadata["failure.requeued"])).toEqual(["true", "false"]);
    expect(events.at(-1)).toMatchObject({
      eventType: "DeadLettered",
      metadata: { "deadletter.reason": "max_attempts" },
    });
    expect(queue.stats()).toMatchObject({ pendingCount: 0, deadLetterCount: 1 });
    const [dead] = queue.deadLetters();
    expect(dead).toMatchObject({ sequenceId: 1, attempt: 2, reason: "max_attempts" });
  });

  it("fail without requeue dead-letters at once; redrive brings it back with attempt 1", async () => {
    const { queue, events } = fixture();
    await queue.enqueue(item(1));
    const [g] = await queue.lease();
    expect(await queue.fail(g!.ownershipToken, { requeue: false, reason: "poison" })).toBe("dead_lettered");
    expect(queue.deadLetters()[0]).toMatchObject({ reason: "failed", lastError: { message: "poison" } });
    expect(await queue.redrive({ sequenceIds: [1, 42] })).toBe(1);
    expect(events.at(-1)?.eventType).toBe("Redriven");
    const [again] = await queue.lease();
    expect(again).toMatchObject({ sequenceId: 1, attempt: 1 });
    expect(queue.stats().deadLetterCount).toBe(0);
  });

  it("an expiry at the last attempt dead-letters with reason expired", async () => {
    const { queue, clock } = fixture({ maxAttempts: 1, leaseDurationMs: 100 });
    await queue.enqueue(item(1));
    await queue.lease();
    clock.advance(100);
    expect(queue.deadLetters()[0]?.reason).toBe("expired");
  });
});

describe("drain and restore", () => {
  it("drain stops grants and enqueues, keeps in-flight leases, and restore resumes", async () => {
    const { queue, events } = fixture();
    await queue.enqueueMany([item(1), item(2), item(3)]);
    const [active] = await queue.lease();
    await queue.lease(); // takes item 2
    const drained = await queue.drain();
    expect(drained.map((i) => i.sequenceId)).toEqual([3]);
    expect(events.at(-1)).toMatchObject({
      eventType: "DrainSnapshot",
      items: drained,
      metadata: { "drain.count": "1" },
    });
    for (const call of [queue.enqueue(item(9)), queue.lease()]) {
      const err = await rejection(call);
      expect(err.status).toBe("unavailable");
      expect(err.code).toBe(ErrorCodes.resourceLease.draining);
    }
    expect(queue.stats().state).toBe("draining");
    await queue.heartbeat(active!.ownershipToken);
    await queue.complete(active!.ownershipToken);
    expect(await queue.restore([])).toBe(0); // an empty restore ends the drain too
    expect(queue.stats().state).toBe("running");
    expect(await queue.restore(drained)).toBe(1);
    const [next] = await queue.lease();
    expect(next?.sequenceId).toBe(3);
  });

  it("a lease waiting when the drain starts is refused with draining", async () => {
    const { queue } = fixture();
    const waiting = queue.lease({ waitMs: 60_000 });
    await queue.drain();
    const err = await rejection(waiting);
    expect(err.status).toBe("unavailable");
    expect(err.code).toBe(ErrorCodes.resourceLease.draining);
  });

  it("restore is all or nothing and refuses ids the queue already holds", async () => {
    const { queue } = fixture();
    await queue.enqueue(item(1));
    const dup = await rejection(queue.restore([{ payload: item(5), sequenceId: 1 }]));
    expect(dup.status).toBe("already-exists");
    const bad = await rejection(
      queue.restore([
        { payload: item(5), sequenceId: 7 },
        { payload: { resourceType: "t" }, sequenceId: 8 },
      ]),
    );
    expect(bad.code).toBe(ErrorCodes.resourceLease.payloadResourceIdRequired);
    expect(bad.metadata.field).toBe("items[1].payload.resourceId");
    expect((await rejection(queue.restore([null]))).code).toBe(ErrorCodes.resourceLease.restorePendingItemRequired);
    expect(queue.stats().pendingCount).toBe(1);
    await queue.restore([{ payload: item(5), sequenceId: 50 }]);
    const { sequenceIds } = await queue.enqueue(item(6));
    expect(sequenceIds[0]).toBe(51); // the id counter moved past restored ids
  });
});

describe("idempotent enqueue", () => {
  it("a retried requestId returns the original item without a second event, until the window ends", async () => {
    const { queue, clock, events } = fixture({ idempotencyWindowMs: 60_000 });
    const a = await queue.enqueue(item(1, { requestId: "req-1" }));
    const b = await queue.enqueue(item(1, { requestId: "req-1" }));
    expect(b.sequenceIds).toEqual(a.sequenceIds);
    expect(b.duplicates).toEqual([true]);
    expect(events.filter((e) => e.eventType === "Enqueue")).toHaveLength(1);
    const batch = await queue.enqueueMany([item(2, { requestId: "req-2" }), item(2, { requestId: "req-2" })]);
    expect(batch.sequenceIds[0]).toBe(batch.sequenceIds[1]);
    clock.advance(60_000);
    const c = await queue.enqueue(item(1, { requestId: "req-1" }));
    expect(c.duplicates).toEqual([false]);
    expect(c.sequenceIds[0]).not.toBe(a.sequenceIds[0]);
  });
});

describe("ordered partitions", () => {
  it("grants at most one active lease per partitionKey, in FIFO order within a partition", async () => {
    const { queue } = fixture({ orderedPartitions: true });
    await queue.enqueueMany([
      item("a1", { partitionKey: "A" }),
      item("a2", { partitionKey: "A" }),
      item("b1", { partitionKey: "B" }),
      item("a3", { partitionKey: "A" }),
    ]);
    const first = await queue.lease({ maxItems: 10 });
    expect(first.map((g) => g.payload.resourceId)).toEqual(["a1", "b1"]);
    expect(await queue.lease()).toEqual([]);
    await queue.complete(first[0]!.ownershipToken);
    const [next] = await queue.lease({ maxItems: 10 });
    expect(next?.payload.resourceId).toBe("a2");
  });

  it("a waiting lease is served when a partition frees up", async () => {
    const { queue } = fixture({ orderedPartitions: true });
    await queue.enqueueMany([item("a1", { partitionKey: "A" }), item("a2", { partitionKey: "A" })]);
    const [g] = await queue.lease();
    const waiting = queue.lease({ waitMs: 10_000 });
    await queue.complete(g!.ownershipToken);
    expect((await waiting)[0]?.payload.resourceId).toBe("a2");
  });
});

describe("backpressure", () => {
  it("fails fast above the high watermark with retryAfterMs, and clears at the low watermark", async () => {
    const { queue } = fixture({ capacity: 100, backpressure: { highWatermark: 4, lowWatermark: 1, cooldownMs: 0 } });
    await queue.enqueueMany([item(1), item(2), item(3), item(4)]);
    const err = await rejection(queue.enqueue(item(5)));
    expect(err.status).toBe("resource-exhausted");
    expect(err.code).toBe(ErrorCodes.resourceLease.backpressure);
    expect(Number(err.metadata.retryAfterMs)).toBeGreaterThan(0);
    await queue.lease({ maxItems: 2 }); // pending 2: between watermarks, still on
    expect(queue.backpressure?.isActive).toBe(true);
    await queue.lease(); // pending 1: off
    expect(queue.backpressure?.isActive).toBe(false);
    await queue.enqueue(item(5));
  });

  it("in wait mode an enqueue waits until backpressure clears", async () => {
    const { queue } = fixture({ backpressure: { highWatermark: 2, lowWatermark: 0, cooldownMs: 0, mode: "wait" } });
    await queue.enqueueMany([item(1), item(2)]);
    let done = false;
    const blocked = queue.enqueue(item(3)).then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    await queue.lease({ maxItems: 2 });
    expect((await blocked).sequenceIds).toEqual([3]);
  });
});

describe("durable-before-ack", () => {
  it("a call resolves only after its events were published, and a failed publish faults the queue", async () => {
    const published: number[] = [];
    let release!: () => void;
    let failNext = false;
    const queue = new ResourceLeaseQueue({
      replicator: {
        async publish(events) {
          if (failNext) throw new Error("disk full");
          await new Promise<void>((r) => {
            release = r;
          });
          published.push(...events.map((e) => e.sequenceNumber));
        },
      },
    });
    let resolved = false;
    const p = queue.enqueue(item(1)).then(() => {
      resolved = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(false);
    release();
    await p;
    expect(published).toEqual([1]);
    failNext = true;
    const err = await rejection(queue.enqueue(item(2)));
    expect(err.status).toBe("unavailable");
    expect(err.code).toBe(ErrorCodes.replication.failed);
    expect(queue.stats().state).toBe("faulted");
    expect((await rejection(queue.lease())).code).toBe(ErrorCodes.replication.failed);
    // A fault is not a lifecycle state: the queue runs (refusing work) until closed, and says what faulted it.
    expect(queue.state).toBe("running");
    expect(queue.fault).toMatchObject({ status: "unavailable", code: ErrorCodes.replication.failed });
    await queue.close();
    expect(queue.state).toBe("stopped");
    expect(queue.stats().state).toBe("closed");
    expect(queue.fault?.code).toBe(ErrorCodes.replication.failed);
  });

  it("is running from construction until close(), and its drain mode is not a lifecycle state", async () => {
    const queue = new ResourceLeaseQueue();
    expect(queue.state).toBe("running");
    expect(queue.fault).toBeUndefined();
    await queue.drain();
    expect(queue.stats().state).toBe("draining");
    expect(queue.state).toBe("running");
    await queue.close();
    await queue.close();
    expect(queue.state).toBe("stopped");
    expect(queue.stats().state).toBe("closed");
  });
});

describe("a lease whose caller went away while it was committed", () => {
  function gatedQueue() {
    const gates: Array<() => void> = [];
    const events: string[] = [];
    const queue = new ResourceLeaseQueue({
      maxAttempts: 5,
      replicator: {
        async publish(batch) {
          events.push(...batch.map((e) => e.eventType));
          if (batch.some((e) => e.eventType === "LeaseGranted")) await new Promise<void>((r) => gates.push(r));
        },
      },
    });
    const open = () => {
      for (const g of gates.splice(0)) g();
    };
    return { queue, events, open };
  }

  it("goes back to the queue at once (attempt counted) instead of waiting for its lease to expire", async () => {
    const { queue, events, open } = gatedQueue();
    await queue.enqueueMany([item(1), item(2)]);
    const caller = new AbortController();
    const leasing = queue.lease({ maxItems: 2, signal: caller.signal });
    await new Promise((r) => setImmediate(r));
    caller.abort(); // the HTTP client closed its connection while the grant was being committed
    open();
    expect((await rejection(leasing)).code).toBe(ErrorCodes.resourceLease.cancelled);
    expect(queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
    expect(events.filter((t) => t === "Failed")).toHaveLength(2);
    const leasingAgain = queue.lease({ maxItems: 2 });
    await new Promise((r) => setImmediate(r));
    open();
    const again = await leasingAgain;
    expect(again.map((g) => [g.sequenceId, g.attempt])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it("does the same for a long-poll served by a later enqueue", async () => {
    const { queue, open } = gatedQueue();
    const caller = new AbortController();
    const leasing = queue.lease({ maxItems: 5, waitMs: 10_000, signal: caller.signal });
    const enqueued = queue.enqueue(item(1)); // its commit carries the waiter's LeaseGranted
    await new Promise((r) => setImmediate(r));
    caller.abort();
    open();
    await enqueued;
    expect((await rejection(leasing)).code).toBe(ErrorCodes.resourceLease.cancelled);
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
  });

  it("keeps the grants when the caller is still there", async () => {
    const { queue, open } = gatedQueue();
    await queue.enqueue(item(1));
    const caller = new AbortController();
    const leasing = queue.lease({ signal: caller.signal });
    await new Promise((r) => setImmediate(r));
    open();
    expect(await leasing).toHaveLength(1);
    caller.abort(); // after delivery: nothing to undo
    expect(queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 1 });
  });
});

describe("restore with renumber", () => {
  it("moves items into a queue whose ids collide, giving them fresh ids in order", async () => {
    const { queue: source } = fixture();
    await source.enqueueMany([item("a"), item("b")]);
    const drained = await source.drain();
    const { queue: target, events } = fixture();
    await target.enqueueMany([item("x"), item("y"), item("z")]); // ids 1..3 taken
    expect((await rejection(target.restore(drained))).code).toBe(ErrorCodes.resourceLease.restoreDuplicateItem);
    const r = await target.restoreItems(drained, { renumber: true });
    expect(r).toEqual({ restoredCount: 2, sequenceIds: [4, 5] });
    expect(events.at(-1)?.metadata["restore.renumbered"]).toBe("true");
    const grants = await target.lease({ maxItems: 5 });
    expect(grants.map((g) => [g.sequenceId, g.payload.resourceId])).toEqual([
      [1, "x"],
      [2, "y"],
      [3, "z"],
      [4, "a"],
      [5, "b"],
    ]);
    expect((await target.enqueue(item("next"))).sequenceIds).toEqual([6]);
  });
});
