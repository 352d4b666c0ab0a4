import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

describe("cancel", () => {
  it("cancels a pending item by sequence id: it is never leased, and its bytes and capacity are freed", async () => {
    const { queue, events } = fixture({ capacity: 2 });
    await queue.enqueueMany([item(1, { body: new Uint8Array(10) }), item(2)]);
    expect(await queue.cancel({ sequenceId: 1 })).toEqual({ sequenceId: 1, state: "pending" });
    const onlyTheOther = fixture().queue;
    await onlyTheOther.enqueue(item(2));
    expect(queue.stats()).toMatchObject({ pendingCount: 1, bytesHeld: onlyTheOther.stats().bytesHeld });
    await queue.enqueue(item(3)); // room again under capacity 2
    const grants = await queue.lease({ maxItems: 5 });
    expect(grants.map((g) => g.sequenceId)).toEqual([2, 3]);
    const cancelled = events.find((e) => e.eventType === "Cancelled")!;
    expect(cancelled.item?.sequenceId).toBe(1);
    expect(cancelled.metadata["cancel.state"]).toBe("pending");
  });

  it("cancels a delayed item (in a retry backoff) by its request id", async () => {
    const { queue, clock } = fixture({ retryBackoff: { initialDelayMs: 5_000 } });
    await queue.enqueue(item(1, { requestId: "order-42" }));
    const [g] = await queue.lease();
    expect(await queue.fail(g!.ownershipToken)).toBe("delayed");
    expect(queue.stats().delayedCount).toBe(1);
    expect(await queue.cancel({ requestId: "order-42" })).toEqual({ sequenceId: 1, state: "delayed" });
    expect(queue.stats()).toMatchObject({ pendingCount: 0, delayedCount: 0 });
    clock.advance(10_000); // the backoff's end finds nothing to requeue
    expect(await queue.lease()).toEqual([]);
  });

  it("cancels a leased item: heartbeat, complete and fail are refused with lease.cancelled, not fenced", async () => {
    const { queue } = fixture({ orderedPartitions: true });
    await queue.enqueueMany([item(1), item(2)]); // same partition: 2 waits for 1
    const [g] = await queue.lease({ maxItems: 2 });
    expect(g!.sequenceId).toBe(1);
    expect(await queue.cancel({ sequenceId: 1 })).toEqual({ sequenceId: 1, state: "active" });
    expect(queue.stats().activeLeaseCount).toBe(0);
    for (const call of [
      queue.heartbeat(g!.ownershipToken),
      queue.complete(g!.ownershipToken),
      queue.fail(g!.ownershipToken),
    ]) {
      const err = await rejection(call);
      expect(err.status).toBe("failed-precondition");
      expect(err.code).toBe(ErrorCodes.resourceLease.leaseCancelled);
    }
    const [batch] = await queue.completeMany([g!.ownershipToken]);
    expect(batch).toMatchObject({ success: false });
    // The partition is free again: the next item of it is leased.
    expect((await queue.lease()).map((x) => x.sequenceId)).toEqual([2]);
  });

  it("answers not_found for unknown, completed and already-cancelled items, and refuses a bad target", async () => {
    const { queue } = fixture();
    await queue.enqueue(item(1));
    const [g] = await queue.lease();
    await queue.complete(g!.ownershipToken);
    for (const target of [{ sequenceId: 1 }, { sequenceId: 99 }, { requestId: "never" }]) {
      const err = await rejection(queue.cancel(target));
      expect([err.status, err.code]).toEqual(["not-found", ErrorCodes.resourceLease.itemNotFound]);
    }
    await queue.enqueue(item(2));
    await queue.cancel({ sequenceId: 2 });
    expect((await rejection(queue.cancel({ sequenceId: 2 }))).code).toBe(ErrorCodes.resourceLease.itemNotFound);
    for (const bad of [{}, { sequenceId: 1, requestId: "x" }, { sequenceId: 0 }, { sequenceId: 1.5 }]) {
      expect((await rejection(queue.cancel(bad))).status).toBe("invalid-argument");
    }
  });

  it("survives a rebuild: the cancelled item stays gone and the holder is still told it was cancelled", async () => {
    const { queue, events, clock } = fixture({ leaseDurationMs: 60_000 });
    await queue.enqueueMany([item(1), item(2), item(3)]);
    const [g] = await queue.lease();
    await queue.cancel({ sequenceId: 1 });
    await queue.cancel({ sequenceId: 3 });
    const replica = await ResourceLeaseQueue.rebuild(structuredClone(events), { clock }, { activeLeases: "keep" });
    expect(replica.snapshot()).toEqual(queue.snapshot());
    expect((await rejection(replica.heartbeat(g!.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseCancelled);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(
      [],
      { clock },
      { snapshot: structuredClone(queue.snapshot()) },
    );
    expect((await rejection(fromSnapshot.complete(g!.ownershipToken))).code).toBe(
      ErrorCodes.resourceLease.leaseCancelled,
    );
    expect((await fromSnapshot.lease({ maxItems: 5 })).map((x) => x.sequenceId)).toEqual([2]);
  });

  it("forgets a cancelled lease once it would have expired: its holder is then fenced", async () => {
    const { queue, clock } = fixture({ leaseDurationMs: 1_000 });
    await queue.enqueueMany([item(1), item(2)]);
    const [g] = await queue.lease();
    await queue.cancel({ sequenceId: 1 });
    clock.advance(2_000);
    await queue.cancel({ sequenceId: 2 }); // a later cancel prunes the memory
    expect((await rejection(queue.heartbeat(g!.ownershipToken))).code).toBe(ErrorCodes.resourceLease.leaseFenced);
    expect(queue.snapshot().cancelledLeases).toBeUndefined();
  });
});
