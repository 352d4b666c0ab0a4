import { ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { item, tempDb } from "./helpers.js";

const names = (grants: ReadonlyArray<{ payload: { resourceId: string } }>) => grants.map((g) => g.payload.resourceId);

describe("delayed and prioritised items in a SQLite log", () => {
  it("survive a binary snapshot and the events after it; a restart re-arms every due time", async () => {
    const path = tempDb();
    const clock = new FakeClock(Date.UTC(2026, 6, 1));
    const t0 = clock.now();
    const queueOptions = { capacity: 10_000, clock, keys: { by: { attribute: "tenant" }, fair: true } } as const;
    const first = await openDurableResourceLeaseQueue({ path, queueOptions, snapshotEveryEvents: 0 });
    await first.queue.enqueueMany([
      item("d1", { notBefore: t0 + 1_000, priority: 1, attributes: { tenant: "a" } }),
      item("d2", { delayMs: 2_000, priority: -(2 ** 31), attributes: { tenant: "b" } }),
      item("p1", { priority: 2 ** 31 - 1, attributes: { tenant: "a" } }),
      item("p2", { attributes: { tenant: "b" } }),
    ]);
    expect(first.replicator.saveSnapshot(first.queue.snapshot())).toBe(true);
    await first.queue.enqueue(item("after", { delayMs: 3_000, priority: 7 })); // only in the events after it
    const live = first.queue.snapshot();
    await first.close();

    const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "all" });
    const snapshot = log.latestSnapshot()!;
    expect(snapshot.delayed.map((d) => [d.payload.resourceId, d.payload.notBefore, d.payload.priority])).toEqual([
      ["d1", t0 + 1_000, 1],
      ["d2", t0 + 2_000, -(2 ** 31)],
    ]);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(log.read(snapshot.lastEventSequence + 1), queueOptions, {
      snapshot,
      activeLeases: "keep",
    });
    const fromEvents = await ResourceLeaseQueue.rebuild(log.read(1), queueOptions, { activeLeases: "keep" });
    expect(fromSnapshot.snapshot()).toEqual(live);
    expect(fromEvents.snapshot()).toEqual(live);
    await log.close();

    const second = await openDurableResourceLeaseQueue({ path, queueOptions });
    expect(second.queue.stats()).toMatchObject({ pendingCount: 5, delayedCount: 3 });
    expect(names(await second.queue.lease({ maxItems: 10 }))).toEqual(["p1", "p2"]);
    const waiting = second.queue.lease({ maxItems: 10, waitMs: 10_000 });
    clock.advance(1_000); // the timer re-armed at open wakes the poll at the due millisecond
    expect(names(await waiting)).toEqual(["d1"]);
    clock.advance(2_000);
    expect(names(await second.queue.lease({ maxItems: 10 }))).toEqual(["after", "d2"]);
    await second.close();
  });
});
