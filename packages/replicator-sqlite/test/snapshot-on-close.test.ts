import { ErrorCodes, ResourceLeaseQueue } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { eventsAt, item, rejection, tempDb } from "./helpers.js";

/**
 * 30 items enqueued in one call and 40 one by one (a periodic snapshot after ~20 events, none after it), 20 of them
 * leased and completed, 2 failed to the dead letters, 3 leases held: ~65 events since the snapshot, 50 items held.
 */
async function busy(path: string, options: { snapshotOnClose?: boolean } = {}) {
  const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 20, ...options });
  const q = durable.queue;
  await q.enqueueMany(Array.from({ length: 30 }, (_, i) => item(i)));
  for (let i = 30; i < 70; i++) await q.enqueue(item(i, { body: new Uint8Array([i]) }));
  for (let i = 0; i < 20; i++) {
    const [g] = await q.lease({ peerId: "w" });
    await q.complete(g!.ownershipToken);
  }
  for (const g of await q.lease({ maxItems: 2, peerId: "w" })) await q.fail(g.ownershipToken, { requeue: false });
  const held = await q.lease({ maxItems: 3, peerId: "held" });
  return { durable, held };
}

describe("a snapshot at close", () => {
  it("is stored once the log holds enough events since the last one, and the next open replays nothing", async () => {
    const path = tempDb();
    const { durable, held } = await busy(path, { snapshotOnClose: true });
    const last = durable.queue.stats().lastEventSequence;
    // The periodic snapshots stopped at twice the items held: the last ~45 events are not in one.
    expect(last - durable.replicator.stats().lastSnapshotSequence).toBeGreaterThanOrEqual(20);
    await durable.close();
    expect(durable.replicator.stats().lastSnapshotSequence).toBe(last);

    // The reference: what the log's events say, leases kept.
    const events = await eventsAt(path);
    expect(events.at(-1)?.sequenceNumber).toBe(last);
    const full = await ResourceLeaseQueue.rebuild(events, {}, { activeLeases: "keep" });
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const snapshot = log.latestSnapshot()!;
    await log.close();
    expect(snapshot).toEqual(full.snapshot());

    await using again = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 20 });
    expect(again.snapshotSequence).toBe(last);
    expect(again.replayedEvents).toBe(0);
    // The leases held at close expired at open, as after a replay: attempt counted, requeued, old tokens fenced.
    expect(again.queue.stats()).toMatchObject({ pendingCount: 48, activeLeaseCount: 0, deadLetterCount: 2 });
    for (const g of held) {
      expect((await rejection(again.queue.complete(g.ownershipToken))).code).toBe("resourcelease.lease.fenced");
    }
    const next = await again.queue.lease({ maxItems: 100 });
    expect(next.map((g) => g.sequenceId)).toEqual([...Array.from({ length: 45 }, (_, i) => 26 + i), 23, 24, 25]);
    expect(next.filter((g) => g.attempt === 2).map((g) => g.sequenceId)).toEqual([23, 24, 25]);
    const maxToken = Math.max(...held.map((g) => g.ownershipToken.fencingToken));
    for (const g of next) expect(g.ownershipToken.fencingToken).toBeGreaterThan(maxToken);
  });

  it("is not stored with snapshotOnClose false: the next open replays the log", async () => {
    const path = tempDb();
    const { durable } = await busy(path, { snapshotOnClose: false });
    const last = durable.queue.stats().lastEventSequence;
    await durable.close();
    const before = durable.replicator.stats().lastSnapshotSequence;
    await using again = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 20 });
    expect(again.snapshotSequence).toBe(before);
    expect(again.replayedEvents).toBe(last - before);
    expect(again.replayedEvents).toBeGreaterThanOrEqual(20);
    expect(again.queue.stats()).toMatchObject({ pendingCount: 48, deadLetterCount: 2 });
  });

  it("is not stored when it would cost more than the replay it saves, or with snapshots off", async () => {
    const path = tempDb();
    const queueOptions = { capacity: 2000, maxBatchSize: 1000 };
    // 1,000 items in one call (a snapshot after it), then 10 more events: a restart replays 10 events for 1,010 items.
    const first = await openDurableResourceLeaseQueue({ path, queueOptions, snapshotEveryEvents: 5 });
    await first.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(i)));
    for (let i = 0; i < 10; i++) await first.queue.enqueue(item(1000 + i));
    const before = first.replicator.stats().lastSnapshotSequence;
    const last = first.queue.stats().lastEventSequence;
    await first.close();
    expect(first.replicator.stats().lastSnapshotSequence).toBe(before);
    await using second = await openDurableResourceLeaseQueue({ path, queueOptions, snapshotEveryEvents: 5 });
    expect(second.snapshotSequence).toBe(before);
    expect(second.replayedEvents).toBe(last - before);
    expect(second.replayedEvents).toBeGreaterThanOrEqual(10);
    expect(second.queue.stats().pendingCount).toBe(1010);

    // Fewer than snapshotEveryEvents since the open, whatever the queue holds.
    const few = await openDurableResourceLeaseQueue({ path: tempDb(), snapshotEveryEvents: 5 });
    for (let i = 0; i < 4; i++) await few.queue.enqueue(item(i));
    await few.close();
    expect(few.replicator.stats().lastSnapshotSequence).toBe(0);

    // snapshotEveryEvents 0 turns snapshots off, at close too.
    const offPath = tempDb();
    const off = await openDurableResourceLeaseQueue({ path: offPath, snapshotEveryEvents: 0 });
    for (let i = 0; i < 30; i++) await off.queue.enqueue(item(i));
    await off.close();
    expect(off.replicator.stats().lastSnapshotSequence).toBe(0);
    await using reopened = await openDurableResourceLeaseQueue({ path: offPath });
    expect(reopened.replayedEvents).toBe(30);
  });

  it("waits for a periodic snapshot still being written, which then covers everything", async () => {
    const path = tempDb();
    const queueOptions = { capacity: 30_000, maxBatchSize: 30_000 };
    const durable = await openDurableResourceLeaseQueue({ path, queueOptions, snapshotEveryEvents: 10 });
    // One commit of 30,000 events starts a snapshot of 30,000 items: six parts, written in two steps.
    await durable.queue.enqueueMany(Array.from({ length: 30_000 }, (_, i) => item(i)));
    expect(durable.replicator.stats().lastSnapshotSequence).toBe(0);
    await durable.close();
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions });
    expect(again.snapshotSequence).toBe(30_000);
    expect(again.replayedEvents).toBe(0);
    expect(again.queue.stats().pendingCount).toBe(30_000);
  });

  it("that fails leaves the log closed and whole: the next open replays it", async () => {
    const path = tempDb();
    const { durable } = await busy(path);
    const last = durable.queue.stats().lastEventSequence;
    const before = durable.replicator.stats().lastSnapshotSequence;
    let attempts = 0;
    durable.replicator.saveSnapshotInSteps = async () => {
      attempts++;
      throw new Error("disk full");
    };
    await Promise.all([durable.close(), durable.close()]);
    expect(attempts).toBe(1);
    expect((await rejection(durable.queue.enqueue(item("late")))).code).toBe("resourcelease.queue.closed");
    await using again = await openDurableResourceLeaseQueue({ path });
    expect(again.snapshotSequence).toBe(before);
    expect(again.replayedEvents).toBe(last - before);
    expect(again.queue.stats()).toMatchObject({ pendingCount: 48, deadLetterCount: 2 });
  });

  it("refuses a snapshotOnClose that is not a boolean", async () => {
    const options = { path: tempDb(), snapshotOnClose: "yes" as unknown as boolean };
    const error = await rejection(openDurableResourceLeaseQueue(options));
    expect(error.code).toBe(ErrorCodes.resourceLease.optionsInvalid);
    expect(error.metadata).toEqual({ option: "snapshotOnClose" });
    expect(error.message).toContain("snapshotOnClose");
  });
});

describe("SqliteResourceLeaseReplicator.flush", () => {
  it("resolves once everything published before it is committed", async () => {
    await using durable = await openDurableResourceLeaseQueue({ path: tempDb() });
    const enqueued = Array.from({ length: 5 }, (_, i) => durable.queue.enqueue(item(i)));
    expect(durable.replicator.stats().uncommittedEvents).toBe(5);
    await durable.replicator.flush();
    expect(durable.replicator.stats()).toMatchObject({ uncommittedEvents: 0, lastCommittedSequence: 5 });
    await Promise.all(enqueued);
  });
});
