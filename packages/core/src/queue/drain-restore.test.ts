import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { fixture, item, rejection } from "./test-helpers.js";

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

describe("an item at the highest attempt", () => {
  it("with maxAttempts above 2^31 - 1 (retry forever) is dead-lettered there, not counted past what a restore takes", async () => {
    const { queue } = fixture({ maxAttempts: Number.MAX_SAFE_INTEGER });
    await queue.drain();
    expect(await queue.restore([{ payload: item(1), sequenceId: 10, attempt: 2 ** 31 - 2 }])).toBe(1);
    const [first] = await queue.lease();
    expect(await queue.fail(first!.ownershipToken, { requeue: true })).toBe("requeued");
    const [last] = await queue.lease();
    expect(last?.attempt).toBe(2 ** 31 - 1);
    expect(await queue.fail(last!.ownershipToken, { requeue: true })).toBe("dead_lettered");
    // Nothing in the queue carries an attempt a restore would refuse: its drained page goes back in one restore.
    const drained = await queue.drain();
    expect(await queue.restore(drained)).toBe(drained.length);
    expect(queue.deadLetters().map((i) => i.attempt)).toEqual([2 ** 31 - 1]);
  });
});
