import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const ids = (grants: ReadonlyArray<{ payload: { resourceId: string } }>) => grants.map((g) => g.payload.resourceId);

describe("delayed items", () => {
  it("are invisible to lease until notBefore, then leasable at that very millisecond", async () => {
    const { queue, clock, types } = fixture();
    const due = clock.now() + 5_000;
    await queue.enqueueMany([item("later", { notBefore: due }), item("now")]);
    expect(queue.stats()).toMatchObject({ pendingCount: 2, delayedCount: 1 });
    expect(ids(await queue.lease({ maxItems: 10 }))).toEqual(["now"]);
    clock.set(due - 1);
    expect(await queue.lease()).toEqual([]);
    clock.set(due);
    const [grant] = await queue.lease();
    expect(grant!.payload).toMatchObject({ resourceId: "later", notBefore: due });
    expect(queue.stats().delayedCount).toBe(0);
    // Becoming due is an event of its own, so a log replays it at the same point.
    expect(types().slice(-2)).toEqual(["Requeued", "LeaseGranted"]);
  });

  it("are leasable at their due millisecond even when the timer has not run (a busy event loop)", async () => {
    let now = Date.UTC(2026, 0, 1);
    const late = { now: () => now, setTimeout: () => ({}) as never, clearTimeout: () => undefined };
    const queue = new ResourceLeaseQueue({ clock: late });
    await queue.enqueue(item("x", { notBefore: now + 100 }));
    now += 99;
    expect(await queue.lease()).toEqual([]);
    now += 1;
    expect(ids(await queue.lease())).toEqual(["x"]);
    await queue.close();
  });

  it("wake a waiting lease exactly when due (the timer heap, no sweep)", async () => {
    const { queue, clock } = fixture();
    await queue.enqueue(item("x", { delayMs: 250 }));
    const polled = queue.lease({ waitMs: 10_000 });
    let at: number | undefined;
    void polled.then(() => {
      at = clock.now();
    });
    expect(clock.pendingTimers).toBe(2); // the poll's deadline and the item's due time, nothing periodic
    clock.advance(249);
    await Promise.resolve();
    expect(at).toBeUndefined();
    clock.advance(1);
    expect(ids(await polled)).toEqual(["x"]);
    expect(at).toBe(clock.now());
  });

  it("turn delayMs into notBefore from the node's clock and refuse both at once", async () => {
    const { queue, clock, events } = fixture();
    await queue.enqueue(item("d", { delayMs: 1234 }));
    expect(events[0]!.item!.payload).toMatchObject({ notBefore: clock.now() + 1234 });
    expect(events[0]!.item!.payload).not.toHaveProperty("delayMs");
    const err = await rejection(queue.enqueue(item("both", { delayMs: 1, notBefore: clock.now() })));
    expect(err.code).toBe(ErrorCodes.resourceLease.payloadInvalid);
    // A notBefore already past (or zero delay) is pending at once.
    await queue.enqueueMany([item("past", { notBefore: clock.now() - 10 }), item("zero", { delayMs: 0 })]);
    expect(queue.stats()).toMatchObject({ pendingCount: 3, delayedCount: 1 });
  });

  it.each([
    ["notBefore past the year 9999", { notBefore: 253_402_300_800_000 }],
    ["notBefore before 1970", { notBefore: -1 }],
    ["notBefore NaN", { notBefore: Number.NaN }],
    ["notBefore not a time", { notBefore: "tomorrow" }],
    ["priority above int32", { priority: 2 ** 31 }],
    ["priority below int32", { priority: -(2 ** 31) - 1 }],
    ["priority NaN", { priority: Number.NaN }],
    ["priority a fraction", { priority: 1.5 }],
    ["delayMs negative", { delayMs: -1 }],
    ["delayMs past 36,525 days", { delayMs: 36_525 * 86_400_000 + 1 }],
  ])("refuse %s with resourcelease.payload.invalid", async (_, extra) => {
    const { queue } = fixture();
    const err = await rejection(queue.enqueue({ ...item(1), ...extra }));
    expect(err.code).toBe(ErrorCodes.resourceLease.payloadInvalid);
    expect(queue.stats().pendingCount).toBe(0);
  });

  it("accept a delay of 100 calendar years, leap days included", async () => {
    const { queue, clock } = fixture();
    const now = new Date(clock.now());
    const century = new Date(now);
    century.setUTCFullYear(now.getUTCFullYear() + 100);
    await queue.enqueue({ ...item(1), delayMs: century.getTime() - now.getTime() });
    expect(queue.stats()).toMatchObject({ pendingCount: 1, delayedCount: 1 });
  });

  it("keep notBefore through drain and restore, and stay delayed if it has not passed", async () => {
    const { queue, clock } = fixture();
    const due = clock.now() + 60_000;
    await queue.enqueueMany([item("a", { notBefore: due, priority: 3 }), item("b")]);
    const drained = await queue.drain();
    expect(drained.find((d) => d.payload.resourceId === "a")!.payload).toMatchObject({ notBefore: due, priority: 3 });
    await queue.restore(drained);
    expect(queue.stats()).toMatchObject({ pendingCount: 2, delayedCount: 1 });
    expect(ids(await queue.lease({ maxItems: 5 }))).toEqual(["b"]);
    clock.set(due);
    expect(ids(await queue.lease())).toEqual(["a"]);
  });

  it("a rebuild after the due time makes them leasable; before it, they wait", async () => {
    const { queue, clock, events } = fixture();
    await queue.enqueue(item("x", { delayMs: 1_000 }));
    const early = await ResourceLeaseQueue.rebuild(structuredClone(events), { clock });
    expect(early.snapshot()).toEqual(queue.snapshot());
    expect(await early.lease()).toEqual([]);
    clock.advance(1_000);
    expect(ids(await early.lease())).toEqual(["x"]);
  });
});

describe("priorities", () => {
  it("lease higher first and FIFO within a priority (the default is 0)", async () => {
    const { queue } = fixture();
    await queue.enqueueMany([
      item("z1"),
      item("lo", { priority: -5 }),
      item("hi1", { priority: 10 }),
      item("z2", { priority: 0 }),
      item("hi2", { priority: 10 }),
      item("max", { priority: 2 ** 31 - 1 }),
      item("min", { priority: -(2 ** 31) }),
    ]);
    expect(ids(await queue.lease({ maxItems: 10 }))).toEqual(["max", "hi1", "hi2", "z1", "z2", "lo", "min"]);
  });

  it("a requeued item goes behind the items of its priority that waited", async () => {
    const { queue } = fixture();
    await queue.enqueueMany([item("a", { priority: 1 }), item("b", { priority: 1 }), item("c")]);
    const [a] = await queue.lease();
    await queue.fail(a!.ownershipToken, { reason: "x" });
    expect(ids(await queue.lease({ maxItems: 3 }))).toEqual(["b", "a", "c"]);
  });

  it("with aging, a low priority that waited long enough overtakes newer higher ones", async () => {
    const { queue, clock } = fixture({ priorityAging: { msPerLevel: 1_000 } });
    await queue.enqueue(item("old-low", { priority: 0 }));
    clock.advance(2_500);
    await queue.enqueueMany([item("new-2", { priority: 2 }), item("new-3", { priority: 3 })]);
    // old-low has aged 2.5 levels: above new-2 (2 + 0), below new-3 (3 + 0).
    expect(ids(await queue.lease({ maxItems: 3 }))).toEqual(["new-3", "old-low", "new-2"]);
  });

  it("without aging, a low priority waits for every higher one", async () => {
    const { queue, clock } = fixture();
    await queue.enqueue(item("old-low"));
    clock.advance(10_000_000);
    await queue.enqueue(item("new", { priority: 1 }));
    expect(ids(await queue.lease({ maxItems: 2 }))).toEqual(["new", "old-low"]);
  });
});
