import { jetstream } from "@nats-io/jetstream";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes } from "../src/index.js";
import { batchHeaders, big, collect, digestOf, heartbeats, numbers, testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

describe("group commit", () => {
  it("stores a publish of 500 events as one message", async () => {
    await using log = await js.open("one-message");
    await log.publish(heartbeats(1, 500));
    expect(await js.messagesOn("one-message")).toBe(1);
    expect(log.stats()).toMatchObject({ appendedMessages: 1, appendedEvents: 500, lastSequence: 500 });
    expect(numbers(await collect(log.read(1)))).toEqual(numbers(heartbeats(1, 500)));
  });

  it("sends publishes made while an append is being prepared as one message", async () => {
    await using log = await js.open("concurrent");
    await Promise.all(Array.from({ length: 20 }, (_, b) => log.publish(heartbeats(b * 5 + 1, b * 5 + 5))));
    expect(await js.messagesOn("concurrent")).toBe(1);
    expect(numbers(await collect(log.read(1)))).toEqual(numbers(heartbeats(1, 100)));
  });

  it("starts a new message where the next publish would pass the server's max payload", async () => {
    await using log = await js.open("near-max");
    // Each event's JSON is about 400 KiB: two fit under 1 MiB, a third does not.
    const events = [1, 2, 3, 4].map((n) => big(n, 300 * 1024));
    await Promise.all(events.map((e) => log.publish([e])));
    expect(await js.messagesOn("near-max")).toBe(2);
    const read = await collect(log.read(1));
    expect(numbers(read)).toEqual([1, 2, 3, 4]);
    expect(digestOf(read)).toBe(digestOf(events));
  });

  it("splits one publish larger than the max payload into parts, and reads it back whole", async () => {
    await using log = await js.open("parts");
    const events = [big(1, 10), big(2, 2_500_000), big(3, 10)];
    await log.publish(events);
    const parts = await js.messagesOn("parts");
    expect(parts).toBe(
      Math.ceil(JSON.stringify(events.map(encodeReplicationEvent)).length / log.stats().maxMessageBytes),
    );
    expect(parts).toBeGreaterThan(1);
    expect(digestOf(await collect(log.read(1)))).toBe(digestOf(events));
    expect(digestOf(await collect(log.read(2, 1)))).toBe(digestOf(events.slice(1, 2)));
    await using reopened = await js.open("parts");
    expect(await reopened.lastSequence()).toBe(3);
    expect(digestOf(await collect(reopened.read(3)))).toBe(digestOf(events.slice(2)));
  });
});

describe("a batch whose writer stopped between its parts", () => {
  it("is not part of the log: open recovers the events before it, the next batch takes its numbers", async () => {
    const shard = "torn";
    const log = await js.open(shard);
    await log.publish(heartbeats(1, 3));
    const tail = log.stats().lastSubjectSequence;
    await log.close();
    // What a writer killed after the first of two parts leaves behind.
    const h = batchHeaders(4, 9, "1/2");
    const client = jetstream(await js.connection());
    await client.publish(`${js.subjectPrefix}.${shard}`, new TextEncoder().encode('[{"sequenceNumber":4,'), {
      headers: h,
      expect: { lastSubjectSequence: tail },
    });

    await using reopened = await js.open(shard);
    expect(await reopened.lastSequence()).toBe(3);
    expect(numbers(await collect(reopened.read(1)))).toEqual([1, 2, 3]);
    await reopened.publish(heartbeats(4, 5));
    expect(await collect(reopened.read(1))).toEqual(heartbeats(1, 5));
    expect(await collect(reopened.read(4))).toEqual(heartbeats(4, 5));
    expect(await js.messagesOn(shard)).toBe(3);
  });

  it("a message this log did not write makes reads fail with data-loss", async () => {
    const shard = "foreign";
    await using log = await js.open(shard);
    await log.publish(heartbeats(1, 2));
    await jetstream(await js.connection()).publish(`${js.subjectPrefix}.${shard}`, "not a log message");
    const error = await collect(log.read(1)).then(
      () => undefined,
      (e: unknown) => e as { status: string; code: string },
    );
    expect(error).toMatchObject({ status: "data-loss", code: JetStreamErrorCodes.corrupt });
    await expect(js.open(shard)).rejects.toMatchObject({ status: "data-loss", code: JetStreamErrorCodes.corrupt });
  });
});
