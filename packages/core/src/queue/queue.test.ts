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

  it("remembers at most idempotencyMaxEntries ids, the newest, and a rebuild from the log forgets the same ones", async () => {
    const options = { idempotencyWindowMs: 60_000, idempotencyMaxEntries: 3 };
    const { queue, clock, events } = fixture(options);
    for (const id of ["a", "b", "c", "d"]) await queue.enqueue(item(id, { requestId: id }));
    // "a" was pushed out by "d" within its window: enqueued again it is a new item; "b"–"d" are still known.
    expect((await queue.enqueue(item("a", { requestId: "a" }))).duplicates).toEqual([false]);
    expect((await queue.enqueue(item("d", { requestId: "d" }))).duplicates).toEqual([true]);
    const rebuilt = await ResourceLeaseQueue.rebuild(structuredClone(events), { ...options, clock });
    const dups = async (q: ResourceLeaseQueue, id: string) => (await q.enqueue(item(id, { requestId: id }))).duplicates;
    // The second "a" pushed out "b": both queues agree.
    expect([await dups(queue, "b"), await dups(rebuilt, "b")]).toEqual([[false], [false]]);
    expect([await dups(queue, "a"), await dups(rebuilt, "a")]).toEqual([[true], [true]]);
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
