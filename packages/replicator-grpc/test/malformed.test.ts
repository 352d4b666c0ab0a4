import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Client, credentials, Metadata, type StatusObject } from "@grpc/grpc-js";
import { ErrorCodes } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { PublishAck } from "../src/gen/omnirelay/replication/v1/hub.js";
import { GrpcReplicationHub, InMemoryReplicationHubStore } from "../src/index.js";
import { Status } from "./raw.js";

// Requests the generated decoders cannot turn into JavaScript values: int64 fields past 2^53 (valid protobuf, valid-
// looking extremes), and bytes that are not protobuf. Each is refused INVALID_ARGUMENT with an OmniRelay code, never
// grpc-js's INTERNAL "Error deserializing request", and the hub keeps serving.

const SERVICE = "/omnirelay.replication.v1.ReplicationHub";
const identity = (b: Buffer) => b;
const PAST_2_53 = 2n ** 53n + 1n;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function startHub() {
  const hub = new GrpcReplicationHub({
    store: new InMemoryReplicationHubStore(),
    auth: { allowUnauthenticated: true },
    shutdownGraceMs: 100,
  });
  await hub.start();
  cleanup.push(() => hub.close());
  const client = new Client(`127.0.0.1:${hub.port}`, credentials.createInsecure());
  cleanup.push(() => client.close());
  return { hub, client };
}

const hello = (nodeId: string, headSequence: bigint) => {
  const w = new BinaryWriter().uint32(10).fork().uint32(10).string(nodeId);
  return Buffer.from(w.uint32(24).int64(headSequence).join().finish());
};
const batch = (sequenceNumber: bigint) => {
  const w = new BinaryWriter().uint32(18).fork().uint32(10).fork().uint32(8).int64(sequenceNumber);
  return Buffer.from(w.uint32(18).bytes(Buffer.from("{}")).join().join().finish());
};

/** A raw Publish stream: messages as bytes, acks decoded, the final status. */
function publish(client: Client) {
  const call = client.makeBidiStreamRequest(`${SERVICE}/Publish`, identity, identity, new Metadata());
  const acks: number[] = [];
  let wake: () => void = () => {};
  call.on("data", (bytes: Buffer) => {
    acks.push(PublishAck.decode(bytes).ackedSequence);
    wake();
  });
  call.on("error", () => {});
  const status = new Promise<StatusObject>((resolve) => call.on("status", resolve));
  const ack = async (count: number) => {
    while (acks.length < count) await new Promise<void>((resolve) => (wake = resolve));
  };
  return { call, acks, status, ack };
}

function expectMalformed(status: StatusObject, rpc: string) {
  expect(status.code).toBe(Status.INVALID_ARGUMENT);
  expect(status.metadata.get("omnirelay-error-code")).toEqual([ErrorCodes.rpc.requestMalformedProtobuf]);
  expect(status.metadata.get("omnirelay-meta-rpc")).toEqual([rpc]);
}

describe("undecodable hub requests", () => {
  it("a hello whose head sequence is past 2^53 ends the Publish stream INVALID_ARGUMENT malformed_protobuf", async () => {
    const { client, hub } = await startHub();
    const p = publish(client);
    p.call.write(hello("n1", PAST_2_53));
    expectMalformed(await p.status, "publish");
    expect(hub.sourceStatuses()).toEqual([]);
  });

  it("a batch event whose sequence number is past 2^53 ends the stream with the code; nothing is stored", async () => {
    const { client, hub } = await startHub();
    const p = publish(client);
    p.call.write(hello("n2", 0n));
    await p.ack(1);
    p.call.write(batch(PAST_2_53));
    expectMalformed(await p.status, "publish");
    expect(hub.checkpoint({ nodeId: "n2", shard: "" })).toBe(0);
    // The hub goes on: the source's next stream publishes.
    const again = publish(client);
    again.call.write(hello("n2", 0n));
    await again.ack(1);
    expect(again.acks).toEqual([0]);
    again.call.end();
  });

  it("a Subscribe from past 2^53, and a Checkpoint that is not protobuf, are refused with the code", async () => {
    const { client } = await startHub();
    const request = new BinaryWriter().uint32(10).string("n3").uint32(24).int64(PAST_2_53).finish();
    const sub = client.makeServerStreamRequest(`${SERVICE}/Subscribe`, identity, identity, Buffer.from(request));
    sub.on("error", () => {});
    sub.on("data", () => {});
    expectMalformed(await new Promise<StatusObject>((resolve) => sub.on("status", resolve)), "subscribe");
    const checkpoint = await new Promise<StatusObject>((resolve) =>
      client.makeUnaryRequest(
        `${SERVICE}/Checkpoint`,
        identity,
        identity,
        Buffer.from([0x0a, 0xff, 0xff, 0xff]),
        (error) => resolve(error as unknown as StatusObject),
      ),
    );
    expectMalformed(checkpoint, "checkpoint");
  });
});
