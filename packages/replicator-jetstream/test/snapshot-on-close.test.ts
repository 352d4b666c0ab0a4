import { ErrorCodes, type ResourceLeaseItemPayload, type ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterAll, describe, expect, it, vi } from "vitest";
import { openJetStreamResourceLeaseQueue } from "../src/index.js";
import { rejectionOf, testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

const item = (n: number): ResourceLeaseItemPayload => ({
  requestId: `req-${n}`,
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n % 7}`,
  payloadEncoding: "json",
  body: new TextEncoder().encode(JSON.stringify({ n })),
});

/**
 * 30 items in one call and 40 one by one, 5 leased and completed, 2 dead-lettered, 3 leases held: ~90 events, fewer
 * than twice the items held, so no periodic snapshot.
 */
async function busy(queue: ResourceLeaseQueue): Promise<void> {
  await queue.enqueueMany(Array.from({ length: 30 }, (_, i) => item(i)));
  for (let n = 30; n < 70; n++) await queue.enqueue(item(n));
  for (let i = 0; i < 5; i++) {
    const [g] = await queue.lease({ peerId: "w" });
    await queue.complete(g!.ownershipToken);
  }
  for (const g of await queue.lease({ maxItems: 2, peerId: "w" }))
    await queue.fail(g.ownershipToken, { requeue: false });
  await queue.lease({ maxItems: 3, peerId: "held" });
}

describe("a snapshot at close", () => {
  it("is stored when the next open would replay many events: a planned handover replays nothing", async () => {
    const clock = new FakeClock();
    const common = { log: js.options("close-snap"), queueOptions: { clock }, snapshotBucket: js.snapshotBucket };
    const first = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20 });
    await busy(first.queue);
    const before = first.queue.snapshot();
    expect(before.lastEventSequence).toBeGreaterThan(80);
    expect(first.snapshotStats().saved).toBe(0);
    await Promise.all([first.close(), first.close()]);
    expect(first.snapshotStats()).toMatchObject({ lastSequence: before.lastEventSequence, failed: 0 });

    await using second = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20 });
    expect(second.snapshotSequence).toBe(before.lastEventSequence);
    expect(second.replayedEvents).toBe(0);
    // Leases kept (the default): the same state, held leases included.
    expect(second.queue.snapshot()).toEqual(before);
    expect(second.queue.stats()).toMatchObject({ pendingCount: 60, activeLeaseCount: 3, deadLetterCount: 2 });
  });

  it("is not stored with snapshotOnClose false, below the thresholds, or with snapshots off", async () => {
    const clock = new FakeClock();
    const common = { log: js.options("close-nosnap"), queueOptions: { clock }, snapshotBucket: js.snapshotBucket };
    const first = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20, snapshotOnClose: false });
    await busy(first.queue);
    const stored = first.snapshotStats().lastSequence;
    const last = first.queue.stats().lastEventSequence;
    await first.close();
    expect(first.snapshotStats().lastSequence).toBe(stored);

    const second = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20 });
    expect(second.snapshotSequence).toBe(stored);
    expect(second.replayedEvents).toBe(last - stored);
    const more = await openJetStreamResourceLeaseQueue({
      ...common,
      log: js.options("close-few"),
      queueOptions: { clock, capacity: 2000, maxBatchSize: 1000 },
      snapshotEveryEvents: 2000,
    });
    // 1,000 items, then 20 events: fewer than snapshotEveryEvents since the open.
    await more.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(i)));
    for (let n = 1000; n < 1020; n++) await more.queue.enqueue(item(n));
    await more.close();
    expect(more.snapshotStats()).toMatchObject({ lastSequence: 0, saved: 0 });
    await second.close();

    // A snapshot at close of 1,000 items; after the next open, 30 events for 1,030 items held are not worth one.
    const deep = {
      ...common,
      log: js.options("close-deep"),
      queueOptions: { clock, capacity: 2000, maxBatchSize: 1000 },
    };
    const filled = await openJetStreamResourceLeaseQueue({ ...deep, snapshotEveryEvents: 20 });
    await filled.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(i)));
    await filled.close();
    expect(filled.snapshotStats()).toMatchObject({ lastSequence: 1000, saved: 1 });
    const reopened = await openJetStreamResourceLeaseQueue({ ...deep, snapshotEveryEvents: 20 });
    expect(reopened.replayedEvents).toBe(0);
    for (let n = 1000; n < 1030; n++) await reopened.queue.enqueue(item(n));
    await reopened.close();
    expect(reopened.snapshotStats()).toMatchObject({ lastSequence: 1000, saved: 0 });
    await using third = await openJetStreamResourceLeaseQueue({ ...deep, snapshotEveryEvents: 20 });
    expect(third.replayedEvents).toBe(30);
    expect(third.queue.stats().pendingCount).toBe(1030);

    const off = await openJetStreamResourceLeaseQueue({
      ...common,
      log: js.options("close-off"),
      snapshotEveryEvents: 0,
    });
    for (let n = 0; n < 30; n++) await off.queue.enqueue(item(n));
    await off.close();
    expect(off.snapshotStats()).toMatchObject({ lastSequence: 0, saved: 0 });
  });

  it("counts an item in a retry backoff once in the periodic snapshot's interval", async () => {
    const clock = new FakeClock();
    const log = js.options("delayed-held");
    const snapshotBucket = js.snapshotBucket;
    const opened = await openJetStreamResourceLeaseQueue({
      log,
      queueOptions: { clock },
      snapshotBucket,
      snapshotEveryEvents: 1,
    });
    const q = opened.queue;
    await q.enqueueMany(Array.from({ length: 10 }, (_, i) => item(i)));
    const grants = await q.lease({ maxItems: 10 });
    await vi.waitFor(() => expect(opened.snapshotStats().saved).toBe(1));
    const first = opened.snapshotStats().lastSequence;
    for (const g of grants) await q.fail(g.ownershipToken, { requeue: true, delayMs: 60_000 });
    expect(q.stats()).toMatchObject({ pendingCount: 10, delayedCount: 10 });
    // 10 items held: a snapshot is due after 20 events (counting the delayed twice, it would be 40).
    for (let n = 10; n < 20; n++) {
      await q.enqueue(item(n));
      const [g] = await q.lease();
      await q.complete(g!.ownershipToken);
    }
    expect(q.stats().lastEventSequence - first).toBe(40);
    await vi.waitFor(() => expect(opened.snapshotStats().saved).toBe(2));
    expect(opened.snapshotStats().lastSequence - first).toBeLessThan(25);
    await opened.close();
  });

  it("refuses a snapshotOnClose that is not a boolean", async () => {
    const options = { log: js.options("close-bad"), snapshotOnClose: 1 as unknown as boolean };
    const error = await rejectionOf(openJetStreamResourceLeaseQueue(options));
    expect(error.code).toBe(ErrorCodes.resourceLease.optionsInvalid);
    expect(error.metadata).toEqual({ option: "snapshotOnClose" });
  });
});
