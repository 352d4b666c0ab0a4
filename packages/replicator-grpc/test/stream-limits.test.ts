import { connect, constants } from "node:http2";
import { ErrorCodes } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcReplicationHub, type GrpcReplicationHubOptions, InMemoryReplicationHubStore } from "../src/index.js";
import { events } from "./helpers.js";
import { type RawEnd, rawClient, rawCredentials, rawPublish, Status } from "./raw.js";

// Publish streams that hold the hub's resources without using them, and batches far larger than any replicator
// sends. Before: 1,000 connections × 5 streams that never said hello stayed open (73 → 148 MiB, 1,021 fds) for as
// long as their keepalive pings were answered, and one 16 MiB message of a million tiny events decoded to ~578 MiB.

const DEADLINE_EXCEEDED = 4;
const PUBLISH = "/omnirelay.replication.v1.ReplicationHub/Publish";

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function startHub(options: Partial<GrpcReplicationHubOptions> = {}) {
  const hub = new GrpcReplicationHub({
    store: new InMemoryReplicationHubStore(),
    auth: { allowUnauthenticated: true },
    shutdownGraceMs: 100,
    ...options,
  });
  cleanup.push(() => hub.close());
  await hub.start();
  const client = rawClient(`127.0.0.1:${hub.port}`, rawCredentials());
  cleanup.push(() => client.close());
  return { hub, client };
}

/** How `ended` settled, or `"still open"` after `ms` (the stream was never ended by the hub). */
function within(ended: Promise<RawEnd>, ms: number): Promise<RawEnd | "still open"> {
  return Promise.race([ended, new Promise<"still open">((r) => setTimeout(() => r("still open"), ms).unref())]);
}

describe("GrpcReplicationHub Publish stream limits", () => {
  it("ends a stream that sends no hello within helloTimeoutMs with DEADLINE_EXCEEDED and a code", async () => {
    const { client } = await startHub({ helloTimeoutMs: 200 });
    const silent = rawPublish(client);
    cleanup.push(() => silent.call.cancel());
    const end = await within(silent.ended, 5_000);
    expect(end).toMatchObject({
      code: DEADLINE_EXCEEDED,
      metadata: { "omnirelay-error-code": ErrorCodes.rpc.requestTimeout, "omnirelay-meta-limitms": "200" },
    });

    // A stream that said hello in time may then stay quiet (a source with nothing to publish) and publish later.
    const greeted = rawPublish(client);
    cleanup.push(() => greeted.call.cancel());
    greeted.hello("node-a");
    await greeted.nextAck(1);
    await new Promise((r) => setTimeout(r, 400));
    greeted.batch(events(1, 3));
    await greeted.nextAck(2);
    expect(greeted.acks).toEqual([0, 3]);
  });

  it("resets a stream whose hello never fully arrives, and announces maxConcurrentStreams", async () => {
    const { hub } = await startHub({ helloTimeoutMs: 200 });
    const session = connect(`http://127.0.0.1:${hub.port}`);
    cleanup.push(() => session.destroy());
    await new Promise<void>((resolve, reject) => {
      session.once("remoteSettings", () => resolve());
      session.once("error", reject);
    });
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);

    const stream = session.request({
      ":method": "POST",
      ":path": PUBLISH,
      "content-type": "application/grpc",
      te: "trailers",
    });
    // A gRPC frame announcing a 1,000-byte message, and only 10 bytes of it: grpc-js holds them, waiting for the rest.
    stream.write(Buffer.concat([Buffer.from([0, 0, 0, 0x03, 0xe8]), Buffer.alloc(10)]));
    // No message was sent, so the status comes as a trailers-only response (the response headers).
    const trailers = new Promise<Record<string, unknown>>((r) => {
      stream.once("response", (h) => r(h));
      stream.once("trailers", (t) => r(t));
    });
    const closed = new Promise<number>((r) => stream.once("close", () => r(stream.rstCode ?? -1)));
    stream.on("data", () => undefined);
    stream.on("error", () => undefined);
    const outcome = await Promise.race([
      Promise.all([trailers, closed]),
      new Promise<"still open">((r) => setTimeout(() => r("still open"), 5_000).unref()),
    ]);
    expect(outcome).not.toBe("still open");
    const [t, rstCode] = outcome as [Record<string, unknown>, number];
    expect(t["grpc-status"]).toBe(String(DEADLINE_EXCEEDED));
    expect(t["omnirelay-error-code"]).toBe(ErrorCodes.rpc.requestTimeout);
    expect(rstCode).toBe(constants.NGHTTP2_NO_ERROR);
  });

  it("refuses a batch of more than maxBatchEvents events with the protocol code, and takes one at the limit", async () => {
    const { client } = await startHub({ maxBatchEvents: 50 });
    const raw = rawPublish(client);
    cleanup.push(() => raw.call.cancel());
    raw.hello("node-a");
    await raw.nextAck(1);
    raw.batch(events(1, 50));
    await raw.nextAck(2);
    raw.batch(events(51, 101));
    const end = await within(raw.ended, 5_000);
    expect(end).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      metadata: {
        "omnirelay-error-code": ErrorCodes.replicationHub.protocol,
        "omnirelay-meta-field": "events",
        "omnirelay-meta-limit": "50",
      },
    });
    expect(raw.acks).toEqual([0, 50]);
  });

  it("refuses helloTimeoutMs, maxConcurrentStreams and maxBatchEvents below 1", () => {
    for (const option of ["helloTimeoutMs", "maxConcurrentStreams", "maxBatchEvents"] as const) {
      expect(
        () =>
          new GrpcReplicationHub({
            store: new InMemoryReplicationHubStore(),
            auth: { allowUnauthenticated: true },
            [option]: 0,
          }),
      ).toThrow(expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid, metadata: { option } }));
    }
  });
});
