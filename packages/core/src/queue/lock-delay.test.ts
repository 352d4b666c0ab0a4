import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const LEASE_MS = 1000;
const LOCK_DELAY_MS = 5000;

/** A queue with lock-delay on, one item leased by peer "a" and left to expire (the clock stands at the expiry). */
async function expiredLease(options: { bindLeasesToPrincipal?: boolean } = {}) {
  const f = fixture({ leaseDurationMs: LEASE_MS, lockDelayMs: LOCK_DELAY_MS, ...options });
  await f.queue.enqueue(item(1));
  const [first] = await f.queue.lease({ peerId: "a", principal: "spiffe://a" });
  f.clock.advance(LEASE_MS);
  return { ...f, first: first! };
}

/** The live queue's snapshot equals one rebuilt from its events, and one rebuilt from a snapshot plus nothing. */
async function expectRebuildEqualsLive(f: Awaited<ReturnType<typeof expiredLease>>) {
  const live = f.queue.snapshot();
  const options = { leaseDurationMs: LEASE_MS, lockDelayMs: LOCK_DELAY_MS, clock: f.clock };
  const fromEvents = await ResourceLeaseQueue.rebuild(f.events, options, { activeLeases: "keep" });
  expect(fromEvents.snapshot()).toEqual(live);
  await fromEvents.close();
}

describe("lock-delay after an unclean expiry", () => {
  it("holds the item back for lockDelayMs and accepts the expired holder's late complete: no second grant", async () => {
    const f = await expiredLease();
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]); // expired now: in its lock-delay
    const expired = f.events.find((e) => e.eventType === "LeaseExpired");
    expect(expired?.metadata["lease.lock_delay_ms"]).toBe(String(LOCK_DELAY_MS));
    expect(f.queue.stats()).toMatchObject({ pendingCount: 1, delayedCount: 1, activeLeaseCount: 0 });
    f.clock.advance(LOCK_DELAY_MS - 1);
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]); // one millisecond before its end
    await f.queue.complete(f.first.ownershipToken); // the old holder finished after all
    const late = f.events.at(-1);
    expect(late).toMatchObject({ eventType: "Completed", ownership: f.first.ownershipToken });
    expect(late?.metadata["lease.late"]).toBe("lock_delay");
    expect(f.queue.stats()).toMatchObject({ pendingCount: 0, delayedCount: 0, activeLeaseCount: 0 });
    f.clock.advance(10 * LOCK_DELAY_MS);
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]); // never granted a second time
    expect(f.types().filter((t) => t === "LeaseGranted")).toHaveLength(1);
    // A second completion with the same token is fenced: the item is done.
    expect((await rejection(f.queue.complete(f.first.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    await expectRebuildEqualsLive(f);
  });

  it("grants the item again after the lock-delay with a higher token, and fences the old one from then on", async () => {
    const f = await expiredLease();
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]);
    // During the lock-delay only a completion is accepted late; heartbeat and fail are refused as before.
    expect((await rejection(f.queue.heartbeat(f.first.ownershipToken))).code).toBe(
      ErrorCodes.resourceLease.leaseFenced,
    );
    expect((await rejection(f.queue.fail(f.first.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    f.clock.advance(LOCK_DELAY_MS);
    const [second] = await f.queue.lease({ peerId: "b" });
    expect(second?.sequenceId).toBe(f.first.sequenceId);
    expect(second?.attempt).toBe(2);
    expect(second!.ownershipToken.fencingToken).toBeGreaterThan(f.first.ownershipToken.fencingToken);
    const [result] = await f.queue.completeMany([f.first.ownershipToken]);
    expect(result).toMatchObject({ success: false, error: { code: ErrorCodes.resourceLease.leaseFenced } });
    await f.queue.complete(second!.ownershipToken);
    expect(f.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
    await expectRebuildEqualsLive(f);
  });

  it("accepts a complete that itself finds the lease past its deadline (before the expiry timer ran)", async () => {
    const f = await expiredLease();
    // No call ran since the deadline: this completion expires the lease, which starts its lock-delay, and is accepted.
    const [result] = await f.queue.completeMany([f.first.ownershipToken]);
    expect(result).toEqual({ success: true });
    expect(f.types().slice(-2)).toEqual(["LeaseExpired", "Completed"]);
    expect(f.queue.stats()).toMatchObject({ pendingCount: 0, delayedCount: 0 });
    await expectRebuildEqualsLive(f);
  });

  it("is decided from the item alone, so a queue rebuilt from a snapshot taken in the lock-delay accepts the late complete too", async () => {
    const f = await expiredLease();
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]);
    const options = { leaseDurationMs: LEASE_MS, lockDelayMs: LOCK_DELAY_MS, clock: f.clock };
    const rebuilt = await ResourceLeaseQueue.rebuild([], options, { snapshot: f.queue.snapshot() });
    await rebuilt.complete(f.first.ownershipToken);
    expect(rebuilt.stats()).toMatchObject({ pendingCount: 0, delayedCount: 0 });
    await rebuilt.close();
  });

  it("is off by default: an expired holder's complete is fenced and the item is leaseable at once", async () => {
    const f = fixture({ leaseDurationMs: LEASE_MS });
    await f.queue.enqueue(item(1));
    const [first] = await f.queue.lease({ peerId: "a" });
    f.clock.advance(LEASE_MS);
    expect((await rejection(f.queue.complete(first!.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    const [again] = await f.queue.lease({ peerId: "b" });
    expect(again?.attempt).toBe(2);
    expect(f.events.find((e) => e.eventType === "LeaseExpired")?.metadata["lease.lock_delay_ms"]).toBeUndefined();
  });

  it("with leases bound to principals: still holds the item back, but refuses the late complete (its principal is gone)", async () => {
    const f = await expiredLease({ bindLeasesToPrincipal: true });
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]);
    const err = await rejection(f.queue.complete(f.first.ownershipToken, { principal: "spiffe://a" }));
    expect(err.code).toBe(ErrorCodes.resourceLease.leaseFenced);
    f.clock.advance(LOCK_DELAY_MS);
    expect(await f.queue.lease({ peerId: "b", principal: "spiffe://b" })).toHaveLength(1);
  });

  it("waits the larger of the lock-delay and the retry backoff", async () => {
    const f = fixture({ leaseDurationMs: LEASE_MS, lockDelayMs: 100, retryBackoff: { initialDelayMs: 3000 } });
    await f.queue.enqueue(item(1));
    const [first] = await f.queue.lease({ peerId: "a" });
    f.clock.advance(LEASE_MS + 2999);
    expect(await f.queue.lease({ peerId: "b" })).toEqual([]);
    // Still waiting (its backoff): the token is still the item's newest, so the late complete is accepted.
    await f.queue.complete(first!.ownershipToken);
    expect(f.queue.stats()).toMatchObject({ pendingCount: 0 });
  });

  it("refuses an invalid lockDelayMs with the option's name", () => {
    for (const lockDelayMs of [-1, 1.5, Number.NaN, 8 * 24 * 3_600_000]) {
      expect(() => new ResourceLeaseQueue({ lockDelayMs })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });
});
