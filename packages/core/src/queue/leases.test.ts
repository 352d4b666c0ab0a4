import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const ids = (grants: ReadonlyArray<{ payload: { resourceId: string } }>) => grants.map((g) => g.payload.resourceId);

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

describe("how much one lease takes", () => {
  it("at most 2 MiB of payload per call (at least one item), waiting or not; the rest stays pending", async () => {
    const { queue } = fixture({ maxBodyBytes: 4 * 1024 * 1024 });
    const body = new Uint8Array(900_000);
    await queue.enqueueMany([1, 2, 3, 4, 5].map((i) => item(i, { body })));
    expect(ids(await queue.lease({ maxItems: 1000 }))).toEqual(["1", "2"]);
    expect(queue.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 2 });
    expect(ids(await queue.lease({ maxItems: 1000 }))).toEqual(["3", "4"]);
    expect(ids(await queue.lease({ maxItems: 1000 }))).toEqual(["5"]);
    // A waiting call is served by the same rule when items arrive.
    const waiting = queue.lease({ maxItems: 1000, waitMs: 10_000 });
    await queue.enqueueMany([6, 7, 8].map((i) => item(i, { body })));
    expect(ids(await waiting)).toEqual(["6", "7"]);
    // One item larger than the bound is still granted, alone.
    await queue.enqueue(item("big", { body: new Uint8Array(3 * 1024 * 1024) }));
    expect(ids(await queue.lease({ maxItems: 1000 }))).toEqual(["8"]);
    expect(ids(await queue.lease({ maxItems: 1000 }))).toEqual(["big"]);
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
