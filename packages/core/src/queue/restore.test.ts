import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { IdRanges } from "./id-ranges.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const pending = (sequenceId: number) => ({ payload: item(sequenceId), sequenceId, attempt: 1, enqueuedAt: 0 });

describe("restore keeps ids only where they cannot collide", () => {
  it("a fresh node takes items in any order, in any number of calls, with their ids", async () => {
    const { queue } = fixture();
    // A drain file's order is lease order: a retried item comes after younger ones.
    await queue.restore([2, 3, 4].map(pending));
    await queue.restore([1, 6].map(pending));
    expect(queue.snapshot().pending.map((p) => p.sequenceId)).toEqual([2, 3, 4, 1, 6]);
    // 5 was skipped over, never used: still free. 1–4 and 6 are taken now.
    await queue.restore([pending(5)]);
    for (const id of [1, 4, 6]) {
      expect((await rejection(queue.restore([pending(id)]))).code).toBe(ErrorCodes.resourceLease.restoreDuplicateItem);
    }
    const { sequenceIds } = await queue.enqueue(item("new"));
    expect(sequenceIds).toEqual([7]);
  });

  it("an id used by an item that is gone is refused; the queue's own drained ids come back, once", async () => {
    const { queue } = fixture();
    await queue.enqueueMany([item(1), item(2), item(3)]);
    const [grant] = await queue.lease();
    await queue.complete(grant!.ownershipToken);
    expect((await rejection(queue.restore([pending(1)]))).code).toBe(ErrorCodes.resourceLease.restoreDuplicateItem);
    const drained = await queue.drain();
    await queue.restore([drained[1]!]);
    expect((await rejection(queue.restore([drained[1]!]))).code).toBe(ErrorCodes.resourceLease.restoreDuplicateItem);
    await queue.restore([drained[0]!]);
    expect(queue.snapshot().pending.map((p) => p.sequenceId)).toEqual([3, 2]);
  });

  it("a refused restore changes nothing (all or none)", async () => {
    const { queue, events } = fixture();
    await queue.enqueue(item(1));
    const before = events.length;
    expect((await rejection(queue.restore([pending(5), pending(1)]))).code).toBe(
      ErrorCodes.resourceLease.restoreDuplicateItem,
    );
    expect(events).toHaveLength(before);
    expect(queue.stats()).toMatchObject({ pendingCount: 1, lastEventSequence: 1 });
  });

  it("rebuild and snapshots keep the reusable ids", async () => {
    const { queue, events } = fixture();
    await queue.restore([10, 20].map(pending));
    await queue.enqueue(item("x"));
    const drained = await queue.drain({ maxItems: 1 });
    const rebuilt = await ResourceLeaseQueue.rebuild(structuredClone(events), {}, { activeLeases: "keep" });
    expect(rebuilt.snapshot()).toEqual(queue.snapshot());
    const fromSnapshot = await ResourceLeaseQueue.rebuild([], {}, { snapshot: structuredClone(queue.snapshot()) });
    // 1–9 and 11–19 were skipped; 10 was drained: all free. 20 and 21 are held.
    await fromSnapshot.restore([pending(5), drained[0]!, pending(15)]);
    expect((await rejection(fromSnapshot.restore([pending(21)]))).code).toBe(
      ErrorCodes.resourceLease.restoreDuplicateItem,
    );
  });
});

describe("restore keeps an item's wait", () => {
  it("a drained retry backoff, restored, still waits for its availableAt, also after a rebuild", async () => {
    const { queue, clock, events } = fixture();
    await queue.enqueueMany([item(1), item(2)]);
    const [grant] = await queue.lease();
    await queue.fail(grant!.ownershipToken, { delayMs: 3_600_000 });
    const drained = await queue.drain();
    const backoff = drained.find((p) => p.sequenceId === grant!.sequenceId)!;
    expect(backoff.availableAt).toBe(clock.now() + 3_600_000);
    await queue.restore(drained);
    // Restoring what drain returned neither cancels the backoff nor loses the other item.
    expect(queue.stats()).toMatchObject({ pendingCount: 2, delayedCount: 1 });
    const [other] = await queue.lease({ maxItems: 10 });
    expect(other?.sequenceId).toBe(2);
    await queue.complete(other!.ownershipToken);
    const rebuilt = await ResourceLeaseQueue.rebuild(events, { clock }, { activeLeases: "keep" });
    expect(rebuilt.snapshot().delayed?.find((p) => p.sequenceId === 1)?.availableAt).toBe(backoff.availableAt);
    clock.advance(3_600_000);
    const due = await queue.lease();
    expect(due.map((g) => [g.sequenceId, g.attempt])).toEqual([[1, 2]]);
  });

  it("a restored availableAt far ahead (9999-12-31) holds the item until then; one in the past does not", async () => {
    const { queue } = fixture();
    const far = Date.parse("9999-12-31T00:00:00Z");
    await queue.restore([
      { ...pending(1), availableAt: far },
      { ...pending(2), availableAt: 0 },
    ]);
    expect(queue.stats()).toMatchObject({ pendingCount: 2, delayedCount: 1 });
    expect((await queue.lease({ maxItems: 10 })).map((g) => g.sequenceId)).toEqual([2]);
    expect(queue.snapshot().delayed?.find((p) => p.sequenceId === 1)?.availableAt).toBe(far);
  });
});

describe("restore and request ids", () => {
  it("items moved in from another node keep their request ids' de-duplication, also after a rebuild", async () => {
    const { queue, clock, events } = fixture();
    await queue.restore([
      { ...pending(30), payload: item(30, { requestId: "B" }) },
      { ...pending(31), payload: item(31, { requestId: "C" }) },
    ]);
    // The producer retries an enqueue it made on the old node: it finds the moved item, nothing is added.
    expect(await queue.enqueue(item("retry", { requestId: "B" }))).toMatchObject({
      sequenceIds: [30],
      duplicates: [true],
    });
    const rebuilt = await ResourceLeaseQueue.rebuild(events, { clock }, { activeLeases: "keep" });
    expect(await rebuilt.enqueue(item("retry", { requestId: "C" }))).toMatchObject({
      sequenceIds: [31],
      duplicates: [true],
    });
    expect(rebuilt.stats().pendingCount).toBe(2);
  });
});

describe("IdRanges", () => {
  it("behaves as a set of integers under any sequence of adds and deletes", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), start: fc.integer({ min: 0, max: 60 }), len: fc.nat(6) }),
      fc.record({ kind: fc.constant("delete" as const), id: fc.integer({ min: 0, max: 66 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const ranges = new IdRanges();
        const model = new Set<number>();
        for (const o of ops) {
          if (o.kind === "add") {
            ranges.add(o.start, o.start + o.len);
            for (let i = o.start; i <= o.start + o.len; i++) model.add(i);
          } else {
            expect(ranges.delete(o.id)).toBe(model.delete(o.id));
          }
        }
        for (let i = -1; i <= 68; i++) expect(ranges.has(i)).toBe(model.has(i));
        // Disjoint, sorted, never adjacent: the most compact form.
        const list = ranges.toArray();
        for (let i = 1; i < list.length; i++) expect(list[i]![0]).toBeGreaterThan(list[i - 1]![1] + 1);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
