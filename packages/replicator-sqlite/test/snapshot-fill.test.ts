import { ResourceLeaseQueue } from "@omnirelay/core";
import { encodePendingItem } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { checksumOf } from "../src/integrity.js";
import { eventsOf, item, tempDb } from "./helpers.js";

/** A snapshot as JSON, bodies as base64 (a body held by the queue and one decoded from a row are different types). */
const plain = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v)));
const big = { capacity: 1_000_000, maxBatchSize: 1000, idempotencyWindowMs: 60_000 };
const body = (n: number) => new TextEncoder().encode(`{"n":${n},"pad":"${"x".repeat(40)}"}`);

/** Fills a durable queue with `batches` × 1,000 enqueues (whole group commits, no turn of the event loop between). */
async function fill(path: string, batches: number) {
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: 1000,
    queueOptions: big,
    replicatorOptions: { durability: "process-safe" },
  });
  const taken: number[] = [];
  for (let b = 0; b < batches; b++) {
    await durable.queue.enqueueMany(
      Array.from({ length: 1000 }, (_, i) => item(`${b}-${i}`, { body: body(i), requestId: `r${b}-${i}` })),
    );
    const s = durable.replicator.stats().lastSnapshotSequence;
    if (s !== taken.at(-1)) taken.push(s);
  }
  return { durable, taken };
}

describe("snapshots while a queue is only being filled", () => {
  it("are taken each time the queue has doubled, and a restart from one equals a full replay", async () => {
    const path = tempDb();
    const { durable, taken } = await fill(path, 40);
    // Before, a snapshot needed twice as many events as items held, which a pure fill never reaches after the first.
    expect(taken.filter((s) => s > 0)).toEqual([1000, 2000, 4000, 8000, 16000, 32000]);
    const expected = durable.queue.snapshot();
    await durable.close();

    const log = await SqliteResourceLeaseReplicator.open({ path });
    const full = await ResourceLeaseQueue.rebuild(await eventsOf(log), big, { activeLeases: "keep" });
    await log.close();
    expect(plain(full.snapshot())).toEqual(plain(expected));
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions: big });
    expect(again.snapshotSequence).toBe(32_000);
    expect(again.replayedEvents).toBe(8000);
    expect(again.queue.snapshot()).toEqual(full.snapshot());
  }, 60_000);

  it("a snapshot written in steps lets publishes commit in between, and is readable only once whole", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0, queueOptions: big });
    for (let b = 0; b < 30; b++) {
      await durable.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(`${b}-${i}`, { body: body(i) })));
    }
    const captured = durable.queue.snapshot();
    // 30,000 items: 6 parts, written 4 per step, so the first step ends before the snapshot is stored.
    const saving = durable.replicator.saveSnapshotInSteps(captured);
    expect(durable.replicator.stats().lastSnapshotSequence).toBe(0);
    expect(durable.replicator.latestSnapshot()).toBeUndefined();
    await durable.queue.enqueue(item("during"));
    expect(durable.replicator.stats().lastCommittedSequence).toBe(30_001);
    expect(await saving).toBe(true);
    expect(durable.replicator.stats().lastSnapshotSequence).toBe(30_000);
    expect(durable.replicator.latestSnapshot()).toEqual(captured);
    const expected = durable.queue.snapshot();
    await durable.close();
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions: big });
    expect(again.snapshotSequence).toBe(30_000);
    expect(again.replayedEvents).toBe(1);
    expect(again.queue.snapshot()).toEqual(expected);
  }, 60_000);

  it("a snapshot view stores the moment it was taken, whatever the queue did before it was written", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0, queueOptions: big });
    for (let b = 0; b < 30; b++) {
      await durable.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(`${b}-${i}`, { body: body(i) })));
    }
    const retry = await durable.queue.lease({ maxItems: 10 });
    for (const g of retry) await durable.queue.fail(g.ownershipToken, { reason: "once", errorCode: "app.once" });
    const view = durable.queue.snapshotView();
    const then = plain(durable.queue.snapshot());
    expect(then.pending.filter((p: { lastError?: unknown }) => p.lastError !== undefined)).toHaveLength(10);
    // After the capture every item changes: 1,000 leased and failed (attempt, error, token; half dead-lettered), the
    // rest leased and completed; one more enqueued.
    const failing = await durable.queue.lease({ maxItems: 1000 });
    await Promise.all(
      failing.map((g, i) =>
        durable.queue.fail(g.ownershipToken, { reason: "later", errorCode: "app.later", requeue: i % 2 === 0 }),
      ),
    );
    for (let more = await durable.queue.lease({ maxItems: 1000 }); more.length > 0; ) {
      await durable.queue.completeMany(more.map((g) => g.ownershipToken));
      more = await durable.queue.lease({ maxItems: 1000 });
    }
    await durable.queue.enqueue(item("after"));
    expect(await durable.replicator.saveSnapshotInSteps(view)).toBe(true);
    expect(plain(durable.replicator.latestSnapshot())).toEqual(then);
    const expected = durable.queue.snapshot();
    await durable.close();
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions: big });
    expect(again.snapshotSequence).toBe(then.lastEventSequence);
    expect(again.queue.snapshot()).toEqual(expected);
  }, 60_000);

  it("a snapshot cut short by close leaves no snapshot behind; the log opens and replays", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0, queueOptions: big });
    for (let b = 0; b < 30; b++) {
      await durable.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(`${b}-${i}`)));
    }
    const expected = durable.queue.snapshot();
    const saving = durable.replicator.saveSnapshotInSteps(expected);
    await durable.close();
    expect(await saving).toBe(false);
    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM resourcelease_events_snapshots").get()).toEqual({ n: 0 });
    db.close();
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions: big });
    expect(again.snapshotSequence).toBe(0);
    expect(again.replayedEvents).toBe(30_000);
    expect(again.queue.snapshot()).toEqual(expected);
  }, 60_000);
});

describe("snapshots stored before the binary parts", () => {
  it("a version 2 snapshot (JSON parts) still loads", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0, queueOptions: big });
    await durable.queue.enqueueMany([1, 2, 3].map((n) => item(n, { body: body(n), requestId: `q${n}` })));
    const expected = durable.queue.snapshot();
    await durable.close();
    // Written as the package wrote it before: a JSON head of version 2 and JSON parts, items as the wire's JSON.
    const head = JSON.stringify({
      version: 2,
      lastEventSequence: expected.lastEventSequence,
      lastFencingToken: expected.lastFencingToken,
      lastSequenceId: expected.lastSequenceId,
      mode: expected.mode,
      parts: 1,
    });
    const part = JSON.stringify({
      pending: expected.pending.map((p) => encodePendingItem(p)),
      delayed: [],
      active: [],
      deadLetters: [],
      requestIds: expected.requestIds,
      reusableIds: [],
    });
    const db = new Database(path);
    const seq = expected.lastEventSequence;
    db.prepare("INSERT INTO resourcelease_events_snapshots VALUES (?, 0, ?, ?)").run(seq, head, checksumOf(head));
    db.prepare("INSERT INTO resourcelease_events_snapshot_parts VALUES (?, 0, ?, ?)").run(seq, part, checksumOf(part));
    db.close();
    await using again = await openDurableResourceLeaseQueue({ path, queueOptions: big });
    expect(again.snapshotSequence).toBe(seq);
    expect(again.replayedEvents).toBe(0);
    // A version 2 snapshot carries no lastEventHash: the chain restarts after it.
    expect(again.queue.snapshot()).toEqual({ ...expected, lastEventHash: undefined });
  });
});
