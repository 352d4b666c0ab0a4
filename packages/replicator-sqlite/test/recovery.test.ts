import { join } from "node:path";
import { ResourceLeaseQueue, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteErrorCodes, SqliteResourceLeaseReplicator } from "../src/index.js";
import { item, rejection, tempDb, tempDir } from "./helpers.js";

async function readAll(log: SqliteResourceLeaseReplicator): Promise<ResourceLeaseReplicationEvent[]> {
  const out: ResourceLeaseReplicationEvent[] = [];
  for await (const e of log.read(1)) out.push(e);
  return out;
}

describe("openDurableResourceLeaseQueue: recovery", () => {
  it("rebuilds pending in order, dead letters, expires active leases and fences every old token", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path, queueOptions: { leaseDurationMs: 60_000 } });
    await first.queue.enqueueMany([1, 2, 3, 4, 5].map((n) => item(n)));
    const grants = await first.queue.lease({ maxItems: 3, peerId: "w1" });
    await first.queue.complete(grants[0]!.ownershipToken);
    await first.queue.fail(grants[1]!.ownershipToken, { requeue: false, reason: "poison" });
    const held = grants[2]!; // still active when the process "dies"
    const maxToken = first.queue.stats().lastFencingToken;
    const lastBefore = first.queue.stats().lastEventSequence;
    await first.close();

    await using second = await openDurableResourceLeaseQueue({ path, queueOptions: { leaseDurationMs: 60_000 } });
    const q = second.queue;
    expect(q.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 0, deadLetterCount: 1 });
    expect(q.deadLetters().map((d) => [d.sequenceId, d.reason])).toEqual([[2, "failed"]]);
    expect((await rejection(q.complete(held.ownershipToken))).code).toBe("resourcelease.lease.fenced");
    const next = await q.lease({ maxItems: 5 });
    expect(next.map((g) => g.sequenceId)).toEqual([4, 5, 3]);
    expect(next.map((g) => g.attempt)).toEqual([1, 1, 2]);
    for (const g of next) expect(g.ownershipToken.fencingToken).toBeGreaterThan(maxToken);
    const { sequenceIds } = await q.enqueue(item(6));
    expect(sequenceIds).toEqual([6]);
    const events = await readAll(second.replicator);
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));
    expect(events.slice(lastBefore, lastBefore + 2).map((e) => e.eventType)).toEqual(["LeaseExpired", "Requeued"]);
  });

  it("dead-letters a lease that was on its last attempt at restart", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path, queueOptions: { maxAttempts: 1 } });
    await first.queue.enqueue(item(1));
    await first.queue.lease();
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path, queueOptions: { maxAttempts: 1 } });
    expect(second.queue.stats()).toMatchObject({ pendingCount: 0, deadLetterCount: 1 });
    expect(second.queue.deadLetters()[0]?.reason).toBe("expired");
  });

  it("keeps enqueue requestIds across a restart, so a retried enqueue is deduplicated", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path });
    const a = await first.queue.enqueue(item(1, { requestId: "r-1" }));
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path });
    const b = await second.queue.enqueue(item(1, { requestId: "r-1" }));
    expect(b.sequenceIds).toEqual(a.sequenceIds);
    expect(b.duplicates).toEqual([true]);
  });

  it("refuses a replicator in queueOptions", async () => {
    const queueOptions = { replicator: { publish: async () => {} } } as never;
    const err = await rejection(openDurableResourceLeaseQueue({ path: tempDb(), queueOptions }));
    expect(err.metadata.option).toBe("queueOptions.replicator");
  });
});

describe("snapshots, compaction and backup", () => {
  async function workload(path: string, options: { snapshotEveryEvents: number; retain?: number }) {
    const durable = await openDurableResourceLeaseQueue({
      path,
      snapshotEveryEvents: options.snapshotEveryEvents,
      replicatorOptions: options.retain !== undefined ? { retainEventsAfterSnapshot: options.retain } : {},
    });
    const q = durable.queue;
    for (let i = 0; i < 30; i++) {
      await q.enqueue(item(i, { body: new Uint8Array([i, 255]), attributes: { i: String(i) } }));
      if (i % 3 === 0) {
        const [g] = await q.lease({ peerId: "w" });
        if (g && i % 2 === 0) await q.complete(g.ownershipToken);
        else if (g) await q.fail(g.ownershipToken, { requeue: i % 9 !== 0, reason: "x" });
      }
    }
    await q.lease({ maxItems: 2, peerId: "held" });
    return durable;
  }

  it("stores snapshots of committed state only, and a restart replays only the tail", async () => {
    const path = tempDb();
    const durable = await workload(path, { snapshotEveryEvents: 10 });
    const stats = durable.replicator.stats();
    expect(stats.lastSnapshotSequence).toBeGreaterThan(0);
    expect(stats.lastSnapshotSequence).toBeLessThanOrEqual(stats.lastCommittedSequence);
    const last = stats.lastCommittedSequence;
    await durable.close();

    // Reference: the state rebuilt from every event (leases kept, to compare before expiry).
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const all = await readAll(log);
    const full = await ResourceLeaseQueue.rebuild(all, {}, { activeLeases: "keep" });
    const snapshot = log.latestSnapshot()!;
    const tail = all.filter((e) => e.sequenceNumber > snapshot.lastEventSequence);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(tail, {}, { activeLeases: "keep", snapshot });
    expect(fromSnapshot.snapshot()).toEqual(full.snapshot());
    await log.close();

    await using again = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 10 });
    expect(again.snapshotSequence).toBe(snapshot.lastEventSequence);
    expect(again.replayedEvents).toBe(last - snapshot.lastEventSequence);
    // The interval is max(snapshotEveryEvents, 2 × items held), so the tail is bounded by the larger of the two.
    const held = full.stats().pendingCount + full.stats().activeLeaseCount + full.stats().deadLetterCount;
    expect(again.replayedEvents).toBeLessThan(Math.max(10, 2 * held) + 5);
    expect(again.queue.stats()).toMatchObject({
      pendingCount: full.stats().pendingCount + full.stats().activeLeaseCount,
      deadLetterCount: full.stats().deadLetterCount,
    });
  });

  it("retainEventsAfterSnapshot deletes covered events, and the log still opens and rebuilds", async () => {
    const path = tempDb();
    const durable = await workload(path, { snapshotEveryEvents: 10, retain: 3 });
    const snap = durable.replicator.stats().lastSnapshotSequence;
    const events = await readAll(durable.replicator);
    expect(events[0]?.sequenceNumber).toBe(snap - 3 + 1);
    const expected = durable.queue.snapshot();
    await durable.close();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const snapshot = log.latestSnapshot()!;
    const rebuilt = await ResourceLeaseQueue.rebuild(
      log.read(snapshot.lastEventSequence + 1),
      {},
      {
        snapshot,
        activeLeases: "keep",
      },
    );
    expect(rebuilt.snapshot()).toEqual(expected);
    await log.close();
  });

  it("'tail' verification skips rows the snapshot covers, but read() still refuses them", async () => {
    const path = tempDb();
    const durable = await workload(path, { snapshotEveryEvents: 10 });
    await durable.close();
    const Database = (await import("better-sqlite3")).default;
    const raw = new Database(path);
    raw.exec("UPDATE resourcelease_events SET checksum = 'bad' WHERE sequence = 2");
    raw.close();
    expect((await rejection(SqliteResourceLeaseReplicator.open({ path }))).metadata.sequence).toBe("2");
    await using tail = await openDurableResourceLeaseQueue({ path, replicatorOptions: { verifyOnOpen: "tail" } });
    const err = await rejection(readAll(tail.replicator));
    expect(err.code).toBe(SqliteErrorCodes.corrupt);
    expect(err.metadata.sequence).toBe("2");
  });

  it("backup() writes a copy that opens and rebuilds the same state", async () => {
    const path = tempDb();
    const copy = join(tempDir(), "backup.db");
    const durable = await workload(path, { snapshotEveryEvents: 10 });
    await durable.queue.enqueue(item("last"));
    await durable.replicator.backup(copy);
    const expected = durable.queue.snapshot();
    await durable.close();
    const log = await SqliteResourceLeaseReplicator.open({ path: copy });
    expect(await log.lastSequence()).toBe(expected.lastEventSequence);
    const snapshot = log.latestSnapshot();
    const rebuilt = await ResourceLeaseQueue.rebuild(log.read(1), {}, { activeLeases: "keep" });
    expect(rebuilt.snapshot()).toEqual(expected);
    expect(snapshot?.lastEventSequence).toBeGreaterThan(0);
    await log.close();
  });
});
