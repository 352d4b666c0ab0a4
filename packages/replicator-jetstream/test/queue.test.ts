import { ErrorCodes, isOmniRelayError, type ResourceLeaseItemPayload } from "@omnirelay/core";
import { eventsOfEveryType, FakeClock } from "@omnirelay/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes, openJetStreamResourceLeaseQueue } from "../src/index.js";
import { collect, digestOf, testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

const item = (n: number): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n}`,
  payloadEncoding: "json",
  body: new TextEncoder().encode(JSON.stringify({ n })),
});

describe("restart", () => {
  it("close and reopen replays exactly what was acknowledged, and the log continues after it", async () => {
    const events = eventsOfEveryType(1);
    const log = await js.open("restart");
    for (let i = 0; i < events.length; i += 3) await log.publish(events.slice(i, i + 3));
    const before = log.stats();
    await log.close();

    await using reopened = await js.open("restart");
    expect(await reopened.lastSequence()).toBe(events.length);
    expect(reopened.stats().lastSubjectSequence).toBe(before.lastSubjectSequence);
    const replayed = await collect(reopened.read(1));
    expect(replayed.map((e) => e.sequenceNumber)).toEqual(events.map((e) => e.sequenceNumber));
    expect(digestOf(replayed)).toBe(digestOf(events));
    expect(replayed).toEqual(events);
  });
});

describe("a ResourceLeaseQueue over the JetStream log", () => {
  it("survives a reopen with the same pending, active and dead-lettered items and fencing tokens", async () => {
    const clock = new FakeClock();
    const queueOptions = { clock, leaseDurationMs: 60_000 };
    const log = { ...js.options("queue-reopen") };
    const first = await openJetStreamResourceLeaseQueue({ log, queueOptions, snapshotBucket: js.snapshotBucket });
    await first.queue.enqueueMany([1, 2, 3, 4, 5, 6].map(item));
    const grants = await first.queue.lease({ maxItems: 3, peerId: "w1" });
    await first.queue.complete(grants[0]!.ownershipToken);
    await first.queue.fail(grants[1]!.ownershipToken, { requeue: false, reason: "poison" });
    const held = grants[2]!;
    const before = first.queue.snapshot();
    const lastEvent = first.queue.stats().lastEventSequence;
    expect(await first.log.lastSequence()).toBe(lastEvent);
    await first.close();

    await using second = await openJetStreamResourceLeaseQueue({
      log,
      queueOptions,
      snapshotBucket: js.snapshotBucket,
    });
    expect(second.replayedEvents).toBe(lastEvent);
    const after = second.queue.snapshot();
    expect(after).toEqual(before);
    expect(after.active.map((a) => a.item.sequenceId)).toEqual([held.sequenceId]);
    expect(after.pending.map((p) => p.sequenceId)).toEqual([4, 5, 6]);
    expect(second.queue.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 1, deadLetterCount: 1 });

    // The worker that held a lease before the reopen finishes it with the same token.
    await second.queue.heartbeat(held.ownershipToken);
    await second.queue.complete(held.ownershipToken);
    const next = await second.queue.lease({ maxItems: 3 });
    expect(next.map((g) => g.sequenceId)).toEqual([4, 5, 6]);
    for (const g of next) expect(g.ownershipToken.fencingToken).toBeGreaterThan(before.lastFencingToken);
    const events = await collect(second.log.read(1));
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));
  });

  it("a kept lease nobody renews expires at its deadline after the reopen", async () => {
    const clock = new FakeClock();
    const queueOptions = { clock, leaseDurationMs: 10_000 };
    const log = js.options("queue-expiry");
    const first = await openJetStreamResourceLeaseQueue({ log, queueOptions, snapshotBucket: js.snapshotBucket });
    await first.queue.enqueue(item(1));
    const [grant] = await first.queue.lease({ peerId: "gone" });
    await first.close();

    await using second = await openJetStreamResourceLeaseQueue({
      log,
      queueOptions,
      snapshotBucket: js.snapshotBucket,
    });
    expect(second.queue.stats().activeLeaseCount).toBe(1);
    clock.advance(10_001);
    const [again] = await second.queue.lease();
    expect(again?.sequenceId).toBe(grant!.sequenceId);
    expect(again?.attempt).toBe(2);
    expect(again!.ownershipToken.fencingToken).toBeGreaterThan(grant!.ownershipToken.fencingToken);
  });

  it("a queue whose shard another queue opened since is refused at its next mutation, and nothing of it is stored", async () => {
    const log = js.options("queue-takeover");
    const old = await openJetStreamResourceLeaseQueue({ log, snapshotBucket: js.snapshotBucket });
    await old.queue.enqueue(item(1));
    await using next = await openJetStreamResourceLeaseQueue({ log, snapshotBucket: js.snapshotBucket });
    await next.queue.enqueue(item(2));

    const error = await old.queue.enqueue(item(3)).then(
      () => undefined,
      (e: unknown) => e,
    );
    // The queue faults on a failed write (core's `resourcelease.replication.failed`); the log's refusal is the cause.
    if (!isOmniRelayError(error)) throw new Error(`expected an OmniRelayError, got ${String(error)}`);
    expect(error.code).toBe(ErrorCodes.replication.failed);
    expect(error.cause).toMatchObject({ status: "failed-precondition", code: JetStreamErrorCodes.appendRefused });
    await old.close().catch(() => undefined);

    const ids = (await collect(next.log.read(1)))
      .filter((e) => e.eventType === "Enqueue")
      .map((e) => e.item?.payload.resourceId);
    expect(ids).toEqual(["r1", "r2"]);
    await using reopened = await openJetStreamResourceLeaseQueue({ log, snapshotBucket: js.snapshotBucket });
    expect(reopened.queue.stats().pendingCount).toBe(2);
  });
});
