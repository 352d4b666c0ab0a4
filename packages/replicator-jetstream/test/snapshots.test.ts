import { createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { isOmniRelayError, type ResourceLeaseItemPayload, ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { encodePendingItem } from "@omnirelay/core/wire";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes, openJetStreamResourceLeaseQueue } from "../src/index.js";
import { JetStreamSnapshotStore } from "../src/snapshots.js";
import { testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

const item = (n: number, bodyBytes = 16): ResourceLeaseItemPayload => ({
  requestId: `req-${n}`,
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n % 7}`,
  payloadEncoding: "json",
  body: new TextEncoder().encode(JSON.stringify({ n, pad: "x".repeat(bodyBytes) })),
});

/** A mixed history: `rounds` of enqueue + lease + complete, then pending, active and dead-lettered items. */
async function workload(queue: ResourceLeaseQueue, rounds: number, bodyBytes = 16): Promise<void> {
  for (let n = 0; n < rounds; n++) {
    await queue.enqueue(item(n, bodyBytes));
    const [grant] = await queue.lease({ peerId: "w" });
    await queue.complete(grant!.ownershipToken);
  }
  await queue.enqueueMany([1, 2, 3, 4, 5].map((n) => item(1000 + n, bodyBytes)));
  const grants = await queue.lease({ maxItems: 2, peerId: "w2" });
  await queue.fail(grants[0]!.ownershipToken, { requeue: false, reason: "poison" });
}

/** Parts of snapshots the bucket's stream holds for `shard`, by snapshot id. */
async function partsInBucket(shard: string): Promise<Map<string, number>> {
  const jsm = await jetstreamManager(await js.connection());
  const prefix = `$KV.${js.snapshotBucket}.${shard}.`;
  const info = await jsm.streams.info(`KV_${js.snapshotBucket}`, { subjects_filter: `${prefix}>` });
  const ids = new Map<string, number>();
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const id = subject.slice(prefix.length).split(".")[0]!;
    ids.set(id, (ids.get(id) ?? 0) + 1);
  }
  return ids;
}

/**
 * Stores `body` as `shard`'s newest snapshot, in one part, the way the store does (head last, with its digest); the
 * head may claim more `parts` than that one.
 */
async function putSnapshot(
  shard: string,
  head: { readonly lastEventSequence: number; readonly parts?: number },
  body: string,
): Promise<void> {
  const { lastEventSequence, parts = 1 } = head;
  const kv = await new Kvm(await js.connection()).create(js.snapshotBucket, { history: 1 });
  const bytes = new TextEncoder().encode(body);
  const id = `t${lastEventSequence}`;
  await kv.put(`${shard}.${id}.0`, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const value = { format: "omnirelay-snapshot-head/1", lastEventSequence, id, parts, bytes: bytes.length, sha256 };
  await kv.put(shard, JSON.stringify(value));
}

describe("snapshots bound the replay", () => {
  it("a reopen loads the newest snapshot and replays only the events after it, reaching the same state", async () => {
    const clock = new FakeClock();
    const shard = "snap-reopen";
    const common = { log: js.options(shard), queueOptions: { clock }, snapshotBucket: js.snapshotBucket };
    const first = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20 });
    expect(first.snapshotSequence).toBe(0);
    await workload(first.queue, 40);
    const before = first.queue.snapshot();
    const lastEvent = before.lastEventSequence;
    expect(lastEvent).toBeGreaterThan(40 * 3);
    await first.close();
    const saved = first.snapshotStats();
    expect(saved.saved).toBeGreaterThanOrEqual(5);
    expect(saved.failed).toBe(0);
    expect(saved.lastSequence).toBeGreaterThan(lastEvent - 25);

    await using second = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 20 });
    expect(second.snapshotSequence).toBe(saved.lastSequence);
    // Only the events after the snapshot were read from the subject.
    expect(second.replayedEvents).toBe(lastEvent - second.snapshotSequence);
    expect(second.replayedEvents).toBeLessThan(25);
    expect(second.queue.snapshot()).toEqual(before);

    // The same state as a replay of the whole subject (a bucket with no snapshot of this shard).
    await using full = await openJetStreamResourceLeaseQueue({
      ...common,
      snapshotBucket: `${js.snapshotBucket}_FULL`,
      snapshotEveryEvents: 0,
    });
    expect(full.snapshotSequence).toBe(0);
    expect(full.replayedEvents).toBe(lastEvent);
    expect(full.queue.snapshot()).toEqual(second.queue.snapshot());
    const jsm = await jetstreamManager(await js.connection());
    await full.close();
    await jsm.streams.delete(`KV_${js.snapshotBucket}_FULL`);

    // It goes on alike: idempotent enqueue remembered, tokens continue.
    const again = await second.queue.enqueue(item(1005));
    expect(again.duplicates).toEqual([true]);
    expect(again.sequenceIds).toEqual([before.pending.find((p) => p.payload.resourceId === "r1005")?.sequenceId]);
    const [grant] = await second.queue.lease();
    expect(grant!.ownershipToken.fencingToken).toBeGreaterThan(before.lastFencingToken);
  });

  it("restores a snapshot taken while later operations were changing the queue, requeued and delayed items included", async () => {
    const clock = new FakeClock();
    const shard = "snap-moment";
    const common = { log: js.options(shard), queueOptions: { clock }, snapshotBucket: js.snapshotBucket };
    const first = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 10 });
    const q = first.queue;
    // Nothing awaited per operation: while one turn's events are appended (a snapshot captured at their hand-over as
    // a view, encoded at their ack), the next turns lease, fail and requeue items the snapshot holds. The reopen
    // must reach the live state from the snapshot plus the events after it. (Replay sets an item's attempt and last
    // error from its events, so this checks the snapshot's lists and their encoding, not the captured moment's
    // fields: core's snapshot-view tests do that.)
    const inFlight: Promise<unknown>[] = [];
    for (let n = 0; n < 40; n++) {
      inFlight.push(q.enqueueMany([item(2 * n), item(2 * n + 1)]));
      inFlight.push(
        q
          .lease({ maxItems: 3, peerId: "w" })
          .then((grants) =>
            Promise.all(
              grants.map((g, i) =>
                q.fail(g.ownershipToken, { reason: `round ${n}`, errorCode: "e.round", delayMs: i === 0 ? 60_000 : 0 }),
              ),
            ),
          ),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(inFlight);
    const before = q.snapshot();
    // Both kinds of change happened: requeued items with a last error, and items waiting out a delay.
    expect(before.pending.some((p) => p.attempt >= 1 && p.lastError !== undefined)).toBe(true);
    expect(before.delayed.some((d) => d.attempt >= 1 && d.lastError !== undefined)).toBe(true);
    await first.close();
    expect(first.snapshotStats()).toMatchObject({ failed: 0 });
    expect(first.snapshotStats().saved).toBeGreaterThanOrEqual(2);

    await using second = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 10 });
    expect(second.snapshotSequence).toBeGreaterThan(0);
    expect(second.replayedEvents).toBe(before.lastEventSequence - second.snapshotSequence);
    expect(second.queue.snapshot()).toEqual(before);
  });

  it("stores a snapshot larger than one value in parts and keeps only the newest snapshot's parts", async () => {
    const shard = "snap-parts";
    const common = {
      log: js.options(shard),
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 30,
      snapshotChunkBytes: 1024,
    };
    const first = await openJetStreamResourceLeaseQueue(common);
    await first.queue.enqueueMany(Array.from({ length: 30 }, (_, n) => item(5000 + n, 600)));
    await workload(first.queue, 40, 600);
    const before = first.queue.snapshot();
    await first.close();
    expect(first.snapshotStats().saved).toBeGreaterThanOrEqual(2);

    const parts = await partsInBucket(shard);
    expect(parts.size).toBe(1); // older snapshots' parts were purged
    expect([...parts.values()][0]).toBeGreaterThan(16); // 32 items of 600+ bytes in 1 KiB parts: read in more than one pull of 16

    await using second = await openJetStreamResourceLeaseQueue(common);
    expect(second.snapshotSequence).toBe(first.snapshotStats().lastSequence);
    expect(second.replayedEvents).toBe(before.lastEventSequence - second.snapshotSequence);
    expect(second.queue.snapshot()).toEqual(before);
  });

  it("an older snapshot never replaces a newer one", async () => {
    const shard = "snap-order";
    const log = js.options(shard);
    const source = await openJetStreamResourceLeaseQueue({
      log,
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 0,
    });
    await workload(source.queue, 5);
    const older = source.queue.snapshot();
    await source.queue.enqueueMany([item(1), item(2)]);
    const newer = source.queue.snapshot();
    await source.close();
    const store = await JetStreamSnapshotStore.open(await js.connection(), {
      bucket: js.snapshotBucket,
      shard,
      replicas: 1,
      chunkBytes: 1024,
      timeoutMs: 5000,
    });
    expect(await store.save(newer)).toBe(true);
    expect(await store.save(older)).toBe(false);
    const loaded = await store.load();
    expect(loaded?.lastEventSequence).toBe(newer.lastEventSequence);
    const rebuilt = await ResourceLeaseQueue.rebuild([], {}, { snapshot: loaded!.snapshot, activeLeases: "keep" });
    expect(rebuilt.snapshot()).toEqual(newer);
    await rebuilt.close();
    expect((await partsInBucket(shard)).size).toBe(1);
  });

  it("refuses a snapshot that covers more events than the log holds (the stream lost acknowledged events)", async () => {
    const shard = "snap-beyond";
    const first = await openJetStreamResourceLeaseQueue({
      log: js.options(shard),
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 10,
    });
    await workload(first.queue, 10);
    await first.close();
    expect(first.snapshotStats().saved).toBeGreaterThan(0);
    // The same shard in a stream that lost its events: the bucket's snapshot is beyond the log's end.
    const error = await openJetStreamResourceLeaseQueue({
      log: js.options(shard, { stream: `${js.stream}_LOST`, subjectPrefix: `${js.subjectPrefix}-lost` }),
      snapshotBucket: js.snapshotBucket,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const jsm = await jetstreamManager(await js.connection());
    await jsm.streams.delete(`${js.stream}_LOST`);
    if (!isOmniRelayError(error)) throw new Error(`expected an OmniRelayError, got ${String(error)}`);
    expect(error.status).toBe("data-loss");
    expect(error.code).toBe(JetStreamErrorCodes.corrupt);
  });

  it("loads a snapshot an earlier version stored as one JSON text", async () => {
    const shard = "snap-v1";
    const common = { log: js.options(shard), snapshotBucket: js.snapshotBucket };
    const first = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 0 });
    await first.queue.enqueueMany([1, 2, 3].map((n) => item(n)));
    const at = first.queue.snapshot();
    await first.queue.enqueueMany([4, 5].map((n) => item(n)));
    const before = first.queue.snapshot();
    await first.close();
    // What 0.x wrote: format /1, every list in one text.
    const v1 = {
      format: "omnirelay-queue-snapshot/1",
      lastEventSequence: at.lastEventSequence,
      lastFencingToken: at.lastFencingToken,
      lastSequenceId: at.lastSequenceId,
      mode: at.mode,
      pending: at.pending.map((p) => encodePendingItem(p)),
      delayed: [],
      active: [],
      deadLetters: [],
      requestIds: at.requestIds,
      reusableIds: [],
      lastEventHash: at.lastEventHash,
    };
    await putSnapshot(shard, { lastEventSequence: at.lastEventSequence }, JSON.stringify(v1));

    await using second = await openJetStreamResourceLeaseQueue({ ...common, snapshotEveryEvents: 0 });
    expect(second.snapshotSequence).toBe(at.lastEventSequence);
    expect(second.replayedEvents).toBe(before.lastEventSequence - at.lastEventSequence);
    expect(second.queue.snapshot()).toEqual(before);
  });

  it("refuses to open on a stored snapshot whose lines do not decode (data loss), rather than serve part of it", async () => {
    const shard = "snap-damaged";
    const common = { log: js.options(shard), snapshotBucket: js.snapshotBucket, snapshotEveryEvents: 10 };
    const first = await openJetStreamResourceLeaseQueue(common);
    await workload(first.queue, 10);
    await first.close();
    const stored = first.snapshotStats().lastSequence;
    expect(stored).toBeGreaterThan(0);
    // The newest snapshot again, with its digest, but one pending line cut short (what a writer's bug would leave).
    const kv = await new Kvm(await js.connection()).open(js.snapshotBucket);
    const head = (await kv.get(shard))!.json<{ id: string; parts: number }>();
    const text = new TextDecoder().decode((await kv.get(`${shard}.${head.id}.0`))!.value);
    const lines = text.split("\n");
    lines[1] = lines[1]!.slice(0, 20);
    await putSnapshot(shard, { lastEventSequence: stored + 1 }, lines.join("\n"));

    const error = await openJetStreamResourceLeaseQueue({ ...common, log: js.options(shard) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isOmniRelayError(error)) throw new Error(`expected an OmniRelayError, got ${String(error)}`);
    expect(error.status).toBe("data-loss");
    expect(error.code).toBe(JetStreamErrorCodes.corrupt);
    expect(error.metadata["jetstream.snapshot"]).toBe(`${js.snapshotBucket}/${shard}.t${stored + 1}`);
  });

  it("a snapshot whose parts are gone counts as none: the open replays the whole log", async () => {
    const shard = "snap-gone";
    const common = { log: js.options(shard), snapshotBucket: js.snapshotBucket, snapshotEveryEvents: 0 };
    const first = await openJetStreamResourceLeaseQueue(common);
    await workload(first.queue, 5);
    const before = first.queue.snapshot();
    await first.close();
    // A head naming two parts of which only the first is there (the second purged by a newer snapshot's writer).
    await putSnapshot(shard, { lastEventSequence: before.lastEventSequence - 3, parts: 2 }, "{}");

    await using second = await openJetStreamResourceLeaseQueue(common);
    expect(second.snapshotSequence).toBe(0);
    expect(second.replayedEvents).toBe(before.lastEventSequence);
    expect(second.queue.snapshot()).toEqual(before);
  });
});
