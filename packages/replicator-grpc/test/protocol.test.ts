import type { Logger } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcReplicationHub, InMemoryReplicationHubStore } from "../src/index.js";
import { toWireEvent } from "../src/wire.js";
import { event, events, until } from "./helpers.js";
import { rawClient, rawCredentials, rawPublish, Status } from "./raw.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A plaintext hub on loopback (identity binding is tested in identity.test.ts). */
async function startHub(extra: { busySourceWaitMs?: number; logger?: Logger } = {}) {
  const store = new InMemoryReplicationHubStore();
  const hub = new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true }, shutdownGraceMs: 100, ...extra });
  await hub.start();
  cleanup.push(() => hub.close());
  return { hub, store, address: `127.0.0.1:${hub.port}` };
}

/** A raw Publish stream on its own connection. */
function rawStream(address: string) {
  const client = rawClient(address, rawCredentials());
  cleanup.push(() => client.close());
  return rawPublish(client);
}

const seqs = (list: readonly { sequenceNumber: number }[]) => list.map((e) => e.sequenceNumber);

describe("the hub's Publish protocol", () => {
  it("acks the checkpoint on hello, acks re-sent events without storing them, and ends the stream on a gap", async () => {
    const { hub, store, address } = await startHub();
    const s = rawStream(address);
    s.hello("raw", "s1");
    await s.nextAck(1);
    s.batch(events(1, 5));
    s.batch(events(3, 7));
    await s.nextAck(3);
    expect(s.acks).toEqual([0, 5, 7]);
    expect(seqs(store.events({ nodeId: "raw", shard: "s1" }))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(hub.sourceStatuses()[0]).toMatchObject({ duplicateEvents: 3, lastSequence: 7, connected: true });
    s.batch(events(10, 11));
    const end = await s.ended;
    expect(end.code).toBe(Status.FAILED_PRECONDITION);
    expect(end.metadata).toMatchObject({
      "omnirelay-error-code": ErrorCodes.replicationHub.gap,
      "omnirelay-meta-replication.acked": "7",
    });
    expect(hub.sourceStatuses()[0]).toMatchObject({ lastSequence: 7, headSequence: 11, lag: 4, connected: false });
  });

  it("refuses a batch before the hello, an invalid source id, a second hello and a non-contiguous batch", async () => {
    const { store, address } = await startHub();
    const noHello = rawStream(address);
    noHello.batch(events(1, 1));
    expect(await noHello.ended).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      metadata: { "omnirelay-error-code": ErrorCodes.replicationHub.protocol },
    });
    const badId = rawStream(address);
    badId.hello("no spaces");
    expect(await badId.ended).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      metadata: { "omnirelay-meta-field": "nodeId" },
    });
    const twice = rawStream(address);
    twice.hello("n1");
    twice.hello("n2");
    expect(await twice.ended).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      metadata: { "omnirelay-meta-field": "hello" },
    });
    // A re-send that skips around (1, then 3) used to be acknowledged as "already stored"; a batch is one run now.
    const holes = rawStream(address);
    holes.hello("n3");
    holes.batch(events(1, 2));
    holes.batch([event(1), event(3)]);
    expect(await holes.ended).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      metadata: { "omnirelay-error-code": ErrorCodes.replicationHub.protocol, "omnirelay-meta-field": "events" },
    });
    expect(seqs(store.events({ nodeId: "n3", shard: "" }))).toEqual([1, 2]);
  });

  it("refuses an event holding a lone surrogate, bytes that are not UTF-8 or a blank hash, and stores none of the batch", async () => {
    const { store, address } = await startHub();
    const json = (extra: Record<string, unknown>) =>
      JSON.stringify({ ...JSON.parse(toWireEvent(event(2)).json.toString()), ...extra });
    const bad = [
      { bytes: Buffer.from(json({ peerId: "a\ud800b" })), field: "peerId" },
      // The trailer is percent-encoded, its text made well-formed first (a lone surrogate cannot be encoded).
      { bytes: Buffer.from(json({ metadata: { "k\udc00": "v" } })), field: "metadata.k%EF%BF%BD" },
      {
        bytes: Buffer.concat([Buffer.from(json({ peerId: "a" })).subarray(0, -2), Buffer.from([0xff, 0x22, 0x7d])]),
        field: "json",
      },
      { bytes: Buffer.from(json({ previousHash: " " })), field: "previousHash" },
    ];
    for (const [i, { bytes, field }] of bad.entries()) {
      const s = rawStream(address);
      s.hello(`u${i}`);
      s.call.write({ batch: { events: [toWireEvent(event(1)), { sequenceNumber: 2, json: bytes }], headSequence: 2 } });
      expect(await s.ended, field).toMatchObject({
        code: Status.INVALID_ARGUMENT,
        metadata: { "omnirelay-error-code": ErrorCodes.replication.eventInvalid, "omnirelay-meta-field": field },
      });
      expect(store.events({ nodeId: `u${i}`, shard: "" }), field).toEqual([]);
    }
  });

  it("refuses a second publish stream while the first is live, and lets it in once the first is gone", async () => {
    const { hub, store, address } = await startHub({ busySourceWaitMs: 1000 });
    const first = rawStream(address);
    first.hello("n");
    await first.nextAck(1);
    const second = rawStream(address);
    second.hello("n");
    second.batch(events(1, 3, "second"));
    expect(await second.ended).toMatchObject({
      code: Status.ALREADY_EXISTS,
      metadata: {
        "omnirelay-error-code": ErrorCodes.replicationHub.sourceBusy,
        "omnirelay-meta-replication.source": "n",
      },
    });
    // The first stream was not disturbed, and nothing of the refused one was stored.
    first.batch(events(1, 2, "first"));
    await first.nextAck(2);
    expect(first.acks).toEqual([0, 2]);
    expect(store.events({ nodeId: "n", shard: "" }).map((e) => e.metadata["test.tag"])).toEqual(["first", "first"]);
    expect(hub.sourceStatuses()[0]).toMatchObject({ connected: true, busyRefusals: 1 });

    // A hello that arrives while the first stream is closing waits for it, then takes the source.
    const third = rawStream(address);
    third.hello("n");
    first.call.cancel();
    await third.nextAck(1);
    expect(third.acks).toEqual([2]);
    expect(hub.sourceStatuses()[0]).toMatchObject({ connected: true, busyRefusals: 1 });
  });

  it("acknowledges a re-sent event only if it equals the stored one; a different one is a conflict and an alarm", async () => {
    const alarms: Array<Record<string, unknown>> = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (obj) => alarms.push(obj as Record<string, unknown>),
    };
    const { hub, store, address } = await startHub({ logger });
    const s = rawStream(address);
    s.hello("n");
    s.batch(events(1, 5, "a"));
    await s.nextAck(2);
    // Equal after canonicalisation (the same event, its metadata keys in another order): acknowledged.
    const reordered = {
      sequenceNumber: 5,
      json: Buffer.from(
        JSON.stringify({
          metadata: { "test.tag": "a" },
          peerId: "a",
          timestamp: new Date(1_700_000_000_005).toISOString(),
          eventType: "Enqueue",
          sequenceNumber: 5,
        }),
      ),
    };
    s.call.write({ batch: { events: [...events(4, 4, "a").map(toWireEvent), reordered], headSequence: 5 } });
    await s.nextAck(3);
    expect(s.acks.at(-1)).toBe(5);
    // 4 equal, 5 different, 6 new: nothing of the batch is stored, nothing acknowledged, the stream ends.
    s.batch([...events(4, 4, "a"), ...events(5, 6, "b")]);
    expect(await s.ended).toMatchObject({
      code: Status.ABORTED,
      metadata: {
        "omnirelay-error-code": ErrorCodes.replicationHub.conflict,
        "omnirelay-meta-replication.sequence": "5",
        "omnirelay-meta-replication.acked": "5",
      },
    });
    expect(s.acks).toEqual([0, 5, 5]);
    expect(store.events({ nodeId: "n", shard: "" }).map((e) => e.metadata["test.tag"])).toEqual([
      "a",
      "a",
      "a",
      "a",
      "a",
    ]);
    expect(hub.sourceStatuses()[0]).toMatchObject({ lastSequence: 5, conflicts: 1, duplicateEvents: 2 });
    expect(hub.metrics()).toContain('omnirelay_replication_hub_conflicts_total{node_id="n",shard=""} 1');
    expect(alarms).toEqual([expect.objectContaining({ source: "n", sequence: 5, caller: "anonymous" })]);

    // The source can go on with the events it really has.
    await until(() => hub.sourceStatuses()[0]?.connected === false);
    const again = rawStream(address);
    again.hello("n");
    again.batch(events(4, 6, "a"));
    await again.nextAck(2);
    expect(again.acks).toEqual([5, 6]);
  });
});
