import { Client, credentials, Metadata, type StatusObject } from "@grpc/grpc-js";
import { Dispatcher, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  type LeaseGrant,
  ResourceLeaseServiceService,
  type SessionClientFrame,
  type SessionServerFrame,
} from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound } from "../src/index.js";
import { Cleanup } from "./harness.js";

// A worker that half-closes its Session stream (call.end(): "I send nothing more", the ordinary end of a bidi stream)
// while it still reads: the settlements it sent before are applied *and answered*, then the stream ends OK. The
// queue's log takes a few milliseconds per commit, as a durable one does (SQLite's group commit): the half-close
// arrives while the settlements are still committing.

/** A replicator standing for a durable log: each commit takes `ms`. */
const slowLog = (ms: number) => ({
  publish: () => new Promise<void>((resolve) => setTimeout(resolve, ms)),
});

const item = (id: number) => ({
  resourceType: "t",
  resourceId: `i${id}`,
  partitionKey: `p${id}`,
  payloadEncoding: "json",
});

async function stack(cleanup: Cleanup) {
  const dispatcher = new Dispatcher({ service: "half-close" });
  const component = cleanup.add(
    new ResourceLeaseDispatcherComponent(dispatcher, {
      queueOptions: { leaseDurationMs: 60_000, replicator: slowLog(20) },
    }),
  );
  const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
  const { port } = await inbound.start();
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  cleanup.add({ close: async () => client.close() });
  return { queue: component.queue, client };
}

/** A raw session with the generated codecs, recording frames and the final status. */
function session(client: Client) {
  const method = ResourceLeaseServiceService.session;
  const metadata = new Metadata();
  metadata.set("rpc-caller", "w");
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata);
  const frames: SessionServerFrame[] = [];
  let wake: () => void = () => {};
  const changed = () => new Promise<void>((resolve) => (wake = resolve));
  call.on("data", (frame: SessionServerFrame) => {
    frames.push(frame);
    wake();
  });
  call.on("error", () => {});
  let ended = false;
  const status = new Promise<StatusObject>((resolve) =>
    call.on("status", (s: StatusObject) => {
      ended = true;
      resolve(s);
      wake();
    }),
  );
  const send = (frame: Partial<SessionClientFrame>) => call.write({ complete: [], fail: [], heartbeat: [], ...frame });
  const until = async (ok: () => boolean) => {
    while (!ok()) {
      if (ended) throw new Error(`the stream ended first; frames ${JSON.stringify(frames)}`);
      await changed();
    }
  };
  const grants = (): LeaseGrant[] => frames.flatMap((f) => f.grants);
  const results = () => frames.flatMap((f) => f.results);
  return { call, frames, status, send, until, grants, results };
}

describe("a worker session half-closed by the worker", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("after stop: the completions it sent before are answered, then the stream ends OK", async () => {
    const { queue, client } = await stack(cleanup);
    await queue.enqueueMany([1, 2, 3, 4, 5, 6, 7, 8].map(item));
    const w = session(client);
    w.send({ credit: 5 });
    await w.until(() => w.grants().length === 5);
    w.send({ stop: true });
    await w.until(() => w.frames.some((f) => f.stopped));
    w.send({ complete: w.grants().map((g, i) => ({ id: i + 1, ownershipToken: g.ownershipToken })) });
    w.call.end();
    const status = await w.status;
    expect(status.code).toBe(0);
    expect(w.results().map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    expect(w.results().every((r) => r.code === undefined)).toBe(true);
    expect(queue.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 0 });
  });

  it("without stop: its settlements are answered, its credit is dropped, and the stream ends OK", async () => {
    const { queue, client } = await stack(cleanup);
    await queue.enqueueMany([1, 2, 3].map(item));
    const w = session(client);
    w.send({ credit: 10 });
    await w.until(() => w.grants().length === 3);
    const [first, second, third] = w.grants() as [LeaseGrant, LeaseGrant, LeaseGrant];
    w.send({ complete: [{ id: 1, ownershipToken: first.ownershipToken }] });
    w.send({
      heartbeat: [{ id: 2, ownershipToken: second.ownershipToken }],
      fail: [{ id: 3, ownershipToken: third.ownershipToken, reason: "boom", requeue: false }],
    });
    w.call.end();
    expect((await w.status).code).toBe(0);
    expect(
      w
        .results()
        .map((r) => r.id)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(w.results().find((r) => r.id === 3)?.outcome).toBe("dead_lettered");
    expect(w.results().find((r) => r.id === 2)?.remainingMs).toBe(60_000);
    // The credit left (7) died with the session: an item enqueued now stays in the queue.
    await queue.enqueue(item(4));
    expect(w.grants()).toHaveLength(3);
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 1, deadLetterCount: 1 });
  });
});
