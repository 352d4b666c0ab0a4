import { jetstreamManager } from "@nats-io/jetstream";
import type { ResourceLeaseItemPayload, ResourceLeaseQueue } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes, openJetStreamResourceLeaseQueue } from "../src/index.js";
import { collect, rejectionOf, testStream } from "./helpers.js";

// Real parts: the machine's NATS server, a stream and buckets of this file's own.
const js = testStream();
afterAll(async () => {
  const jsm = await jetstreamManager(await js.connection());
  await jsm.streams.delete(`KV_${js.snapshotBucket}_OTHER`).catch(() => undefined);
  await js.remove();
});

const item = (n: number): ResourceLeaseItemPayload => ({
  requestId: `req-${n}`,
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n % 5}`,
  payloadEncoding: "json",
  body: new TextEncoder().encode(JSON.stringify({ n })),
});

/** `rounds` of enqueue + lease + complete (one message each), then three pending items and one leased. */
async function workload(queue: ResourceLeaseQueue, rounds: number): Promise<void> {
  for (let n = 0; n < rounds; n++) {
    await queue.enqueue(item(n));
    const [grant] = await queue.lease({ peerId: "w" });
    await queue.complete(grant!.ownershipToken);
  }
  await queue.enqueueMany([1, 2, 3, 4].map((n) => item(1000 + n)));
  await queue.lease({ peerId: "w2" });
}

describe("trimming the log behind snapshots (retainEventsBehindSnapshot)", () => {
  it("keeps the subject bounded, and a reopen from the snapshot reaches the same state", async () => {
    const shard = "trim-bounded";
    const common = {
      log: js.options(shard),
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 20,
      retainEventsBehindSnapshot: 6,
    };
    const first = await openJetStreamResourceLeaseQueue(common);
    await workload(first.queue, 100);
    const before = first.queue.snapshot();
    await first.close();
    const stats = first.snapshotStats();
    expect(stats.trimFailed).toBe(0);
    expect(stats.saved).toBeGreaterThanOrEqual(10);
    // ~300 events were appended one message each; only those after (newest snapshot − 6) and the batch holding it stay.
    expect(stats.trimmedMessages).toBeGreaterThan(250);
    const kept = await js.messagesOn(shard);
    expect(kept).toBeLessThanOrEqual(before.lastEventSequence - stats.lastSequence + 6 + 1);

    await using second = await openJetStreamResourceLeaseQueue(common);
    const firstKept = await second.log.firstSequence();
    expect(firstKept).toBeGreaterThan(1);
    expect(firstKept).toBeLessThanOrEqual(stats.lastSequence + 1 - 6);
    expect(second.queue.snapshot()).toEqual(before);
    // A read from the start begins at the first event kept, in order, with no gap after it.
    const events = await collect(second.log.read(1));
    expect(events[0]!.sequenceNumber).toBe(firstKept);
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => firstKept + i));
    // It goes on: request ids behind the trim are still remembered (they live in the snapshot).
    expect((await second.queue.enqueue(item(1003))).duplicates).toEqual([true]);
  });

  it("refuses to open a trimmed log without a snapshot that covers the gap, and changes nothing", async () => {
    const shard = "trim-no-snapshot";
    const log = js.options(shard);
    const first = await openJetStreamResourceLeaseQueue({
      log,
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 10,
      retainEventsBehindSnapshot: 0,
    });
    await workload(first.queue, 20);
    const before = first.queue.snapshot();
    await first.close();
    const messages = await js.messagesOn(shard);

    const error = await rejectionOf(
      openJetStreamResourceLeaseQueue({ log, snapshotBucket: `${js.snapshotBucket}_OTHER` }),
    );
    expect([error.status, error.code]).toEqual(["data-loss", JetStreamErrorCodes.corrupt]);
    expect(Number(error.metadata["replication.first_sequence"])).toBeGreaterThan(1);
    expect(error.metadata["snapshot.sequence"]).toBe("0");
    expect(await js.messagesOn(shard)).toBe(messages);

    await using again = await openJetStreamResourceLeaseQueue({ log, snapshotBucket: js.snapshotBucket });
    expect(again.queue.snapshot()).toEqual(before);
  });

  it("trims only its own shard's subject", async () => {
    const [trimmed, kept] = ["trim-mine", "trim-neighbour"];
    const neighbour = await openJetStreamResourceLeaseQueue({ log: js.options(kept), snapshotEveryEvents: 0 });
    await workload(neighbour.queue, 10);
    const neighbourMessages = await js.messagesOn(kept);
    const mine = await openJetStreamResourceLeaseQueue({
      log: js.options(trimmed),
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 10,
      retainEventsBehindSnapshot: 0,
    });
    await workload(mine.queue, 30);
    await mine.close();
    expect(mine.snapshotStats().trimmedMessages).toBeGreaterThan(0);
    expect(await js.messagesOn(kept)).toBe(neighbourMessages);
    expect(await neighbour.log.firstSequence()).toBe(1);
    await neighbour.close();
  });

  it("refuses bad settings with resourcelease.options.invalid", async () => {
    for (const [retain, every] of [
      [-1, 10],
      [1.5, 10],
      [5, 0],
    ] as const) {
      const error = await rejectionOf(
        openJetStreamResourceLeaseQueue({
          log: js.options(),
          snapshotEveryEvents: every,
          retainEventsBehindSnapshot: retain,
        }),
      );
      expect([error.code, error.metadata.option]).toEqual([
        ErrorCodes.resourceLease.optionsInvalid,
        "retainEventsBehindSnapshot",
      ]);
    }
  });
});
