import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes } from "../src/index.js";
import { batchHeaders, big, collect, digestOf, heartbeats, numbers, rejectionOf, testStream } from "./helpers.js";

// Real parts: the machine's NATS server, a stream of this file's own.
const js = testStream();
afterAll(() => js.remove());

const subjectOf = (shard: string) => `${js.subjectPrefix}.${shard}`;
const body = (events: readonly ResourceLeaseReplicationEvent[]) =>
  new TextEncoder().encode(JSON.stringify(events.map(encodeReplicationEvent)));

/** A message of `shard`'s subject, read straight from the stream. */
async function storedMessage(shard: string, seq: number) {
  const jsm = await jetstreamManager(await js.connection());
  const message = await jsm.streams.getMessage(js.stream, { seq });
  if (message === null || message.subject !== subjectOf(shard)) throw new Error(`no message ${seq} on ${shard}`);
  return message;
}

/** Re-publishes stored message `seq` at the tail of `shard`'s subject: same `Omni-*` headers and body, no `Nats-*`. */
async function republish(shard: string, seq: number): Promise<number> {
  const message = await storedMessage(shard, seq);
  const h = headers();
  for (const [name, values] of message.header as MsgHdrs) {
    if (name.toLowerCase().startsWith("nats-")) continue;
    for (const value of values) h.append(name, value);
  }
  return (await jetstream(await js.connection()).publish(subjectOf(shard), message.data, { headers: h })).seq;
}

/** Another shard's messages in the same stream, so that a shard's messages are not next to each other. */
async function neighbourAppends(count: number): Promise<void> {
  const client = jetstream(await js.connection());
  for (let i = 0; i < count; i++) await client.publish(subjectOf("neighbour"), `n${i}`);
}

/** Opens `shard` expecting data-loss `corrupt`, and that the refused open stored nothing. */
async function refusedOpen(shard: string) {
  const messages = await js.messagesOn(shard);
  const error = await rejectionOf(js.open(shard));
  expect([error.status, error.code]).toEqual(["data-loss", JetStreamErrorCodes.corrupt]);
  expect(await js.messagesOn(shard)).toBe(messages);
  return error;
}

describe("open checks that the subject's last message continues the log", () => {
  it("refuses a copy of an earlier batch re-published at the tail, instead of numbering from it", async () => {
    const shard = "copy-of-first";
    const log = await js.open(shard);
    await log.publish(heartbeats(1, 5));
    const firstMessage = log.stats().lastSubjectSequence;
    await neighbourAppends(7);
    await log.publish(heartbeats(6, 10));
    await log.close();
    await neighbourAppends(40);
    const copy = await republish(shard, firstMessage);

    const error = await refusedOpen(shard);
    expect(error.metadata["jetstream.stream_sequence"]).toBe(String(copy));
    expect(error.message).toContain("first event is 1, not 11");
  });

  it("refuses a copy of an old owner-epoch marker at the tail", async () => {
    const shard = "copy-of-marker";
    const log = await js.open(shard);
    const marker = await log.appendOwnerMarker({ owner: "n1", url: "http://n1.test", epoch: 1 });
    await log.publish(heartbeats(1, 3));
    await log.close();
    const copy = await republish(shard, marker);

    const error = await refusedOpen(shard);
    expect(error.metadata["jetstream.stream_sequence"]).toBe(String(copy));
    expect(error.message).toContain("marker follows event 0");
  });

  it("refuses a tail whose body does not hold the events its headers announce", async () => {
    const shard = "wrong-body";
    const log = await js.open(shard);
    await log.publish(heartbeats(1, 5));
    const tail = log.stats().lastSubjectSequence;
    await log.close();
    const h = batchHeaders(6, 10);
    await jetstream(await js.connection()).publish(subjectOf(shard), body(heartbeats(1, 5)), {
      headers: h,
      expect: { lastSubjectSequence: tail },
    });

    const error = await refusedOpen(shard);
    expect(error.message).toContain("event 0 is numbered 1, not 6");
  });

  it("refuses a copy of the last part of a batch stored in parts", async () => {
    const shard = "copy-of-part";
    const log = await js.open(shard);
    const events = [big(1, 10), big(2, 2_500_000), big(3, 10)];
    await log.publish(events);
    const lastPart = log.stats().lastSubjectSequence;
    await log.publish(heartbeats(4, 4));
    await log.close();
    const copy = await republish(shard, lastPart);

    const error = await refusedOpen(shard);
    expect(error.metadata["jetstream.stream_sequence"]).toBe(String(copy));
    expect(error.message).toContain("the parts before it are not the messages before it");
  });
});

describe("open still accepts every tail a writer can leave", () => {
  it("an append sent again after a timeout, which JetStream de-duplicated", async () => {
    const shard = "resent";
    const log = await js.open(shard);
    await log.publish(heartbeats(1, 5));
    const tail = log.stats().lastSubjectSequence;
    await log.close();
    const h = batchHeaders(6, 6);
    const client = jetstream(await js.connection());
    const send = () =>
      client.publish(subjectOf(shard), body(heartbeats(6, 6)), {
        headers: h,
        msgID: "writer:6:1",
        expect: { lastSubjectSequence: tail },
      });
    const sent = await send();
    const again = await send();
    expect([again.duplicate, again.seq]).toEqual([true, sent.seq]);

    await using reopened = await js.open(shard);
    expect(await reopened.lastSequence()).toBe(6);
    await reopened.publish(heartbeats(7, 7));
    expect(numbers(await collect(reopened.read(1)))).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("a batch cut short between its parts, then an owner-epoch marker, then the batch that took its numbers", async () => {
    const shard = "torn-marker";
    const log = await js.open(shard);
    await log.publish(heartbeats(1, 3));
    const tail = log.stats().lastSubjectSequence;
    await log.close();
    const h = batchHeaders(4, 9, "1/2");
    await jetstream(await js.connection()).publish(subjectOf(shard), new TextEncoder().encode("[{"), {
      headers: h,
      expect: { lastSubjectSequence: tail },
    });

    const owner = await js.open(shard);
    expect(await owner.lastSequence()).toBe(3);
    await owner.appendOwnerMarker({ owner: "n2", url: "http://n2.test", epoch: 2 });
    await owner.close();
    const next = await js.open(shard);
    expect(await next.lastSequence()).toBe(3);
    await next.publish(heartbeats(4, 5));
    await next.close();
    await using last = await js.open(shard);
    expect(await last.lastSequence()).toBe(5);
    expect(await collect(last.read(1))).toEqual(heartbeats(1, 5));
  });

  it("a batch stored in parts, and a subject trimmed down to its last batch", async () => {
    const shard = "parts-then-trim";
    const log = await js.open(shard);
    const events = [big(1, 10), big(2, 2_500_000), big(3, 10)];
    await log.publish(events);
    await log.close();
    const parts = await js.open(shard);
    expect(await parts.lastSequence()).toBe(3);
    expect(digestOf(await collect(parts.read(1)))).toBe(digestOf(events));
    await parts.publish(heartbeats(4, 6));
    expect(await parts.trimBefore(6)).toBeGreaterThan(1);
    expect(await js.messagesOn(shard)).toBe(1);
    await parts.close();

    const trimmed = await js.open(shard);
    expect(await trimmed.lastSequence()).toBe(6);
    await trimmed.appendOwnerMarker({ owner: "n3", url: "http://n3.test", epoch: 3 });
    await trimmed.close();
    await using reopened = await js.open(shard);
    expect(await reopened.lastSequence()).toBe(6);
    await reopened.publish(heartbeats(7, 7));
    expect(numbers(await collect(reopened.read(1)))).toEqual([4, 5, 6, 7]);
  });
});
