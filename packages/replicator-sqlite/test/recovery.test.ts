import { createHash } from "node:crypto";
import { join } from "node:path";
import { ErrorCodes, ResourceLeaseQueue } from "@omnirelay/core";
import { encodePendingItem } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { checksumOf } from "../src/integrity.js";
import { eventsOf, item, rejection, tempDb, tempDir } from "./helpers.js";

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
    const events = await eventsOf(second.replicator);
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));
    expect(events.slice(lastBefore, lastBefore + 2).map((e) => e.eventType)).toEqual(["LeaseExpired", "Requeued"]);
  });

  it("dead-letters a lease that was on its last attempt at restart", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({
      path,
      queueOptions: { capacity: 100_000, maxAttempts: 1 },
    });
    await first.queue.enqueue(item(1));
    await first.queue.lease();
    await first.close();
    await using second = await openDurableResourceLeaseQueue({
      path,
      queueOptions: { capacity: 100_000, maxAttempts: 1 },
    });
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
    const all = await eventsOf(log);
    const full = await ResourceLeaseQueue.rebuild(all, {}, { activeLeases: "keep" });
    const snapshot = log.latestSnapshot()!;
    const tail = all.filter((e) => e.sequenceNumber > snapshot.lastEventSequence);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(tail, {}, { activeLeases: "keep", snapshot });
    expect(fromSnapshot.snapshot()).toEqual(full.snapshot());
    await log.close();

    await using again = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 10 });
    expect(again.snapshotSequence).toBe(snapshot.lastEventSequence);
    expect(again.replayedEvents).toBe(last - snapshot.lastEventSequence);
    // The interval is max(snapshotEveryEvents, items held), so the tail is bounded by the larger of the two.
    const held = full.stats().pendingCount + full.stats().activeLeaseCount + full.stats().deadLetterCount;
    expect(again.replayedEvents).toBeLessThan(Math.max(10, held) + 5);
    expect(again.queue.stats()).toMatchObject({
      pendingCount: full.stats().pendingCount + full.stats().activeLeaseCount,
      deadLetterCount: full.stats().deadLetterCount,
    });
  });

  it("retainEventsAfterSnapshot deletes covered events, and the log still opens and rebuilds", async () => {
    const path = tempDb();
    const durable = await workload(path, { snapshotEveryEvents: 10, retain: 3 });
    const snap = durable.replicator.stats().lastSnapshotSequence;
    const events = await eventsOf(durable.replicator);
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
    const err = await rejection(eventsOf(tail.replicator));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
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

describe("snapshots in parts", () => {
  async function bigQueue(path: string) {
    const durable = await openDurableResourceLeaseQueue({
      path,
      snapshotEveryEvents: 0,
      queueOptions: { capacity: 100_000, leaseDurationMs: 60_000, maxAttempts: 1, idempotencyWindowMs: 60_000 },
    });
    const q = durable.queue;
    // 11,000 items with request ids (so the request-id list spans parts too): pending, active, dead.
    for (let b = 0; b < 11; b++) {
      await q.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(b * 1000 + i, { requestId: `r-${b}-${i}` })));
    }
    const grants = await q.lease({ maxItems: 1000, peerId: "w" });
    for (const g of grants.slice(0, 300)) await q.fail(g.ownershipToken, { requeue: false, reason: "poison" });
    return durable;
  }

  it("stores a large queue as a head and parts of at most 5,000 entries, and restores it exactly", async () => {
    const path = tempDb();
    const durable = await bigQueue(path);
    expect(durable.replicator.saveSnapshot(durable.queue.snapshot())).toBe(true);
    const expected = durable.queue.snapshot();
    const last = expected.lastEventSequence;
    await durable.close();

    const db = new Database(path, { readonly: true });
    const parts = db
      .prepare("SELECT part, length(data) AS n FROM resourcelease_events_snapshot_parts WHERE sequence = ?")
      .all(last) as Array<{ part: number; n: number }>;
    const head = db.prepare("SELECT data FROM resourcelease_events_snapshots WHERE sequence = ?").get(last) as {
      data: string;
    };
    db.close();
    // 10,000 pending + 700 active + 300 dead + 11,000 request ids = 22,000 entries: 5 parts.
    expect(parts.map((p) => p.part)).toEqual([0, 1, 2, 3, 4]);
    expect(JSON.parse(head.data)).toMatchObject({ version: 3, parts: 5, lastEventSequence: last });
    expect(head.data.length).toBeLessThan(300);

    const log = await SqliteResourceLeaseReplicator.open({ path });
    expect(log.latestSnapshot()).toEqual(expected);
    await log.close();
    await using again = await openDurableResourceLeaseQueue({
      path,
      queueOptions: { capacity: 100_000, maxAttempts: 1 },
    });
    expect(again.snapshotSequence).toBe(last);
    expect(again.replayedEvents).toBe(0);
    // The 700 active leases expired on restart (last attempt: dead-lettered).
    expect(again.queue.stats()).toMatchObject({ pendingCount: 10_000, deadLetterCount: 1000 });
  }, 60_000);

  it("refuses a snapshot with a corrupt or missing part, and repair drops it and replays the log instead", async () => {
    const path = tempDb();
    const durable = await bigQueue(path);
    durable.replicator.saveSnapshot(durable.queue.snapshot());
    const last = durable.queue.stats().lastEventSequence;
    await durable.close();
    const db = new Database(path);
    db.prepare("DELETE FROM resourcelease_events_snapshot_parts WHERE sequence = ? AND part = 2").run(last);
    db.close();

    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(err.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_checksum" });
    const report = await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
    expect(report).toMatchObject({ repaired: true, droppedSnapshots: 1, droppedEvents: 0 });
    const check = new Database(path, { readonly: true });
    expect(check.prepare("SELECT count(*) AS n FROM resourcelease_events_snapshot_parts").get()).toEqual({ n: 0 });
    check.close();
    await using again = await openDurableResourceLeaseQueue({
      path,
      queueOptions: { capacity: 100_000, maxAttempts: 1 },
    });
    expect(again.snapshotSequence).toBe(0);
    expect(again.replayedEvents).toBe(last);
    expect(again.queue.stats()).toMatchObject({ pendingCount: 10_000, deadLetterCount: 1000 });
  }, 60_000);

  it.each([
    ["the writer thread", true],
    ["this thread", false],
  ])(
    "restores a snapshot part by part to exactly the state the whole snapshot gives (log on %s)",
    async (_, writerThread) => {
      const path = tempDb();
      const durable = await bigQueue(path);
      durable.replicator.saveSnapshot(durable.queue.snapshot());
      await durable.close();
      // Five parts, read four at a time: a full page (the next asked for ahead), then the last one.
      const log = await SqliteResourceLeaseReplicator.open({ path, writerThread });
      const whole = log.latestSnapshot()!;
      const inPieces = log.latestSnapshotInPieces()!;
      // Read from the log as they are reached (a page of parts at a time): before it closes.
      const pieces = [...inPieces.pieces];
      await log.close();
      expect(pieces).toHaveLength(5); // one piece per part
      expect([...inPieces.pieces]).toEqual([]); // read once
      const options = { capacity: 100_000, maxAttempts: 1, idempotencyWindowMs: 60_000 };
      const fromWhole = await ResourceLeaseQueue.rebuild([], options, { snapshot: whole, activeLeases: "keep" });
      const fromPieces = await ResourceLeaseQueue.rebuild([], options, {
        snapshot: { head: inPieces.head, pieces },
        activeLeases: "keep",
      });
      expect(fromPieces.snapshot()).toEqual(fromWhole.snapshot());
      expect(fromPieces.snapshot()).toEqual(whole);
      await fromWhole.close();
      await fromPieces.close();
    },
    60_000,
  );

  it("refuses a part that does not decode when the restore reaches it, and serves no queue", async () => {
    const path = tempDb();
    const durable = await bigQueue(path);
    durable.replicator.saveSnapshot(durable.queue.snapshot());
    const last = durable.queue.stats().lastEventSequence;
    await durable.close();
    // Part 2 announces 5 pending items and ends: its checksum matches, its bytes do not decode.
    const bad = Buffer.from([2, 0, 5, 0]);
    const db = new Database(path);
    db.prepare(
      "UPDATE resourcelease_events_snapshot_parts SET data = ?, checksum = ? WHERE sequence = ? AND part = 2",
    ).run(bad, checksumOf(bad), last);
    db.close();

    // 'on-read' (as openDurableResourceLeaseQueue opens): the checksums and the head verify, the parts wait.
    const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read" });
    const inPieces = log.latestSnapshotInPieces()!;
    expect(inPieces.head.lastEventSequence).toBe(last);
    const it = inPieces.pieces[Symbol.iterator]();
    expect(it.next().done).toBe(false);
    expect(it.next().done).toBe(false);
    const pieceErr = await rejection(() => it.next());
    expect(pieceErr.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(pieceErr.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_decode" });
    await log.close();

    const err = await rejection(openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 100_000 } }));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(err.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_decode" });
    // The log was closed again (not left locked), and a full check finds the same damage.
    const full = await rejection(SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "all" }));
    expect(full.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_decode" });
  }, 60_000);

  it("still reads a snapshot an earlier version stored as one JSON row", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    await first.queue.enqueueMany([item(1), item(2, { body: new Uint8Array([1, 2, 3]) })]);
    const snapshot = first.queue.snapshot();
    await first.close();
    const v1 = JSON.stringify({
      version: 1,
      lastEventSequence: snapshot.lastEventSequence,
      lastFencingToken: snapshot.lastFencingToken,
      lastSequenceId: snapshot.lastSequenceId,
      mode: snapshot.mode,
      pending: snapshot.pending.map((p) => encodePendingItem(p)),
      delayed: [],
      active: [],
      deadLetters: [],
      requestIds: [],
    });
    const db = new Database(path);
    db.prepare(
      "INSERT INTO resourcelease_events_snapshots (sequence, created_at, data, checksum) VALUES (?, 0, ?, ?)",
    ).run(snapshot.lastEventSequence, v1, createHash("sha256").update(v1, "utf8").digest("hex"));
    db.close();
    await using again = await openDurableResourceLeaseQueue({ path });
    expect(again.snapshotSequence).toBe(snapshot.lastEventSequence);
    // A version 1 snapshot carries no lastEventHash: the chain restarts after it.
    expect(again.queue.snapshot()).toEqual({ ...snapshot, lastEventHash: undefined });
  });
});

describe("a snapshot that fails", () => {
  it("is not retried at every commit, only after another interval of events", async () => {
    await using durable = await openDurableResourceLeaseQueue({ path: tempDb(), snapshotEveryEvents: 10 });
    let attempts = 0;
    durable.replicator.saveSnapshotInSteps = async () => {
      attempts++;
      throw new Error("disk full");
    };
    const q = durable.queue;
    for (let i = 0; i < 40; i++) {
      await q.enqueue(item(i));
      const [grant] = await q.lease();
      await q.complete(grant!.ownershipToken);
    }
    // 120 events, one commit each: retrying at every commit would be ~110 attempts; one per 10 events is ~11.
    expect(attempts).toBeGreaterThanOrEqual(10);
    expect(attempts).toBeLessThanOrEqual(12);
    expect(q.stats()).toMatchObject({ pendingCount: 0, lastEventSequence: 120 });
  });
});
