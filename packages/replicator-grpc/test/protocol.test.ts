import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { type PublishAck, ReplicationHubClient } from "../src/gen/omnirelay/replication/v1/hub.js";
import { GrpcReplicationErrorCodes, GrpcReplicationHub, InMemoryReplicationHubStore } from "../src/index.js";
import { toWireEvent } from "../src/wire.js";
import { events } from "./helpers.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Drives the hub's Publish stream by hand, recording acks and the final status. */
async function rawStream(address: string) {
  const client = new ReplicationHubClient(address, credentials.createInsecure());
  cleanup.push(() => client.close());
  const call = client.publish();
  const acks: number[] = [];
  const waiters: Array<() => void> = [];
  call.on("data", (ack: PublishAck) => {
    acks.push(ack.ackedSequence);
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<{ code: number; metadata: Record<string, unknown> }>((resolve) => {
    call.on("error", (e: { code: number; metadata: { getMap(): Record<string, unknown> } }) =>
      resolve({ code: e.code, metadata: e.metadata.getMap() }),
    );
    call.on("end", () => resolve({ code: 0, metadata: {} }));
  });
  const nextAck = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (acks.length >= count ? resolve() : waiters.push(check));
      check();
    });
  return { call, acks, nextAck, ended };
}

describe("the hub's Publish protocol", () => {
  it("acks the checkpoint on hello, acks re-sent events without storing them, and ends the stream on a gap", async () => {
    const store = new InMemoryReplicationHubStore();
    const hub = new GrpcReplicationHub({ store });
    await hub.start();
    cleanup.push(() => hub.close());
    const s = await rawStream(`127.0.0.1:${hub.port}`);
    s.call.write({ hello: { nodeId: "raw", shard: "s1", headSequence: 0 } });
    await s.nextAck(1);
    s.call.write({ batch: { events: events(1, 5).map(toWireEvent), headSequence: 5 } });
    s.call.write({ batch: { events: events(3, 7).map(toWireEvent), headSequence: 7 } });
    await s.nextAck(3);
    expect(s.acks).toEqual([0, 5, 7]);
    expect(store.events({ nodeId: "raw", shard: "s1" }).map((e) => e.sequenceNumber)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(hub.sourceStatuses()[0]).toMatchObject({ duplicateEvents: 3, lastSequence: 7, connected: true });
    s.call.write({ batch: { events: events(10, 11).map(toWireEvent), headSequence: 11 } });
    const end = await s.ended;
    expect(end.code).toBe(9); // FAILED_PRECONDITION
    expect(end.metadata).toMatchObject({
      "omnirelay-error-code": GrpcReplicationErrorCodes.gap,
      "omnirelay-meta-replication.acked": "7",
    });
    expect(hub.sourceStatuses()[0]).toMatchObject({ lastSequence: 7, headSequence: 11, lag: 4, connected: false });
  });

  it("refuses a batch before the hello and an invalid source id", async () => {
    const hub = new GrpcReplicationHub({ store: new InMemoryReplicationHubStore() });
    await hub.start();
    cleanup.push(() => hub.close());
    const noHello = await rawStream(`127.0.0.1:${hub.port}`);
    noHello.call.write({ batch: { events: events(1, 1).map(toWireEvent), headSequence: 1 } });
    expect(await noHello.ended).toMatchObject({
      code: 3,
      metadata: { "omnirelay-error-code": GrpcReplicationErrorCodes.protocol },
    });
    const badId = await rawStream(`127.0.0.1:${hub.port}`);
    badId.call.write({ hello: { nodeId: "no spaces", shard: "", headSequence: 0 } });
    expect(await badId.ended).toMatchObject({ code: 3, metadata: { "omnirelay-meta-field": "nodeId" } });
  });

  it("a newer stream of the same source supersedes the older one", async () => {
    const hub = new GrpcReplicationHub({ store: new InMemoryReplicationHubStore() });
    await hub.start();
    cleanup.push(() => hub.close());
    const older = await rawStream(`127.0.0.1:${hub.port}`);
    older.call.write({ hello: { nodeId: "n", shard: "", headSequence: 0 } });
    await older.nextAck(1);
    const newer = await rawStream(`127.0.0.1:${hub.port}`);
    newer.call.write({ hello: { nodeId: "n", shard: "", headSequence: 0 } });
    expect(await older.ended).toMatchObject({
      code: 10,
      metadata: { "omnirelay-error-code": GrpcReplicationErrorCodes.superseded },
    });
    await newer.nextAck(1);
    expect(hub.sourceStatuses()[0]?.connected).toBe(true);
  });
});
