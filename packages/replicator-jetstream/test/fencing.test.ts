import { isOmniRelayError, type OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamErrorCodes } from "../src/index.js";
import { collect, testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

function events(from: number, to: number, writer: string): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (let n = from; n <= to; n++) {
    out.push({ sequenceNumber: n, eventType: "Heartbeat", timestamp: 1_700_000_000_000 + n, metadata: { writer } });
  }
  return out;
}

async function refusal(promise: Promise<unknown>): Promise<OmniRelayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOmniRelayError(error)) throw new Error(`expected an OmniRelayError, got ${String(error)}`);
  return error;
}

const writers = async (log: { read(from: number): AsyncIterable<ResourceLeaseReplicationEvent> }) =>
  (await collect(log.read(1))).map((e) => `${e.sequenceNumber}:${e.metadata.writer}`);

describe("a stale writer is refused by the stream", () => {
  it("two logs on one empty shard: the second appends first, the first's append is refused and writes nothing", async () => {
    const shard = "fenced-empty";
    await using first = await js.open(shard);
    await using second = await js.open(shard);
    await second.publish(events(1, 2, "second"));

    const error = await refusal(first.publish(events(1, 2, "first")));
    expect(error.status).toBe("failed-precondition");
    expect(error.code).toBe(JetStreamErrorCodes.appendRefused);
    expect(error.code).toBe("resourcelease.jetstream.append_refused");
    expect(error.metadata["jetstream.expected_last_subject_sequence"]).toBe("0");
    expect(await js.messagesOn(shard)).toBe(1);
    expect(await writers(second)).toEqual(["1:second", "2:second"]);

    // Faulted: it never appends again, even with numbers that would fit the stored log.
    const again = await refusal(first.publish(events(3, 3, "first")));
    expect(again.code).toBe(JetStreamErrorCodes.appendRefused);
    expect(first.stats().fault?.code).toBe(JetStreamErrorCodes.appendRefused);
    expect(await first.lastSequence()).toBe(0);
    expect(await js.messagesOn(shard)).toBe(1);
    await second.publish(events(3, 3, "second"));
    expect(await writers(second)).toEqual(["1:second", "2:second", "3:second"]);
  });

  it("a new owner opens after the old one wrote: the old owner's next append is refused, the new owner's kept", async () => {
    const shard = "fenced-takeover";
    await using old = await js.open(shard);
    await old.publish(events(1, 3, "old"));
    await using next = await js.open(shard);
    expect(await next.lastSequence()).toBe(3);
    await next.publish(events(4, 5, "next"));

    const error = await refusal(old.publish(events(4, 4, "old")));
    expect(error.code).toBe(JetStreamErrorCodes.appendRefused);
    expect(error.metadata["replication.sequence"]).toBe("4");
    expect(await writers(next)).toEqual(["1:old", "2:old", "3:old", "4:next", "5:next"]);
    expect(await writers(old)).toEqual(["1:old", "2:old", "3:old", "4:next", "5:next"]);
  });

  it("publishes queued behind a refused append are refused too, and none of them is stored", async () => {
    const shard = "fenced-queued";
    await using stale = await js.open(shard);
    await using owner = await js.open(shard);
    await owner.publish(events(1, 1, "owner"));
    const results = await Promise.allSettled([1, 2, 3].map((n) => stale.publish(events(n, n, "stale"))));
    for (const result of results) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason.code).toBe(JetStreamErrorCodes.appendRefused);
    }
    expect(await writers(owner)).toEqual(["1:owner"]);
  });
});
