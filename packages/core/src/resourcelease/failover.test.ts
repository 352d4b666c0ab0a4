import { afterEach, describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import { ResourceLeaseWorker } from "../worker/worker.js";
import { ResourceLeaseClient, type ResourceLeaseClientOptions } from "./client.js";
import type { ResourceLeaseEndpointChange } from "./endpoints.js";
import { type FailoverNode, notOwner, perItem, sharedLog, startNode } from "./failover-harness.js";

// Real parts: two dispatcher nodes with HTTP inbounds on free loopback ports and one shared durable log; the shard
// moves from A to B the way an owned queue moves (A stops serving with not_owner, B rebuilds from the log keeping
// active leases). Clients and workers reach the nodes over HTTP.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nodes(...names: string[]): Promise<FailoverNode[]> {
  const started = await Promise.all(names.map((n) => startNode(n)));
  for (const n of started) cleanups.push(() => n.close());
  return started;
}

function client(options: ResourceLeaseClientOptions): ResourceLeaseClient {
  const c = new ResourceLeaseClient(options);
  cleanups.push(() => c.close());
  return c;
}

const item = (id: string, requestId?: string) => ({
  resourceType: "job",
  resourceId: id,
  partitionKey: `p-${id}`,
  payloadEncoding: "json",
  ...(requestId ? { requestId } : {}),
});

async function rejection(promise: Promise<unknown>): Promise<OmniRelayError> {
  try {
    await promise;
  } catch (error) {
    if (isOmniRelayError(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("a client and a worker ride through a failover over HTTP", () => {
  it("follow not_owner to B: enqueues land on B, a lease granted by A completes on B with its token", async () => {
    const shard = sharedLog(900);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    const changes: ResourceLeaseEndpointChange[] = [];
    const producer = client({ endpoints: [a!.url, b!.url], onEndpointChange: (c) => changes.push(c) });
    for (const id of ["1", "2", "3"]) await producer.enqueue(item(id));

    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let firstStarted!: (grant: ResourceLeaseGrant) => void;
    const started = new Promise<ResourceLeaseGrant>((resolve) => {
      firstStarted = resolve;
    });
    const handled: ResourceLeaseGrant[] = [];
    const worker = new ResourceLeaseWorker({
      client: client({ endpoints: [a!.url, b!.url], caller: "w" }),
      peerId: "w",
      leaseWaitMs: 200,
      handler: async (grant) => {
        handled.push(grant);
        if (handled.length === 1) {
          firstStarted(grant);
          await firstHeld;
        }
      },
    });
    cleanups.push(() => worker.close({ graceMs: 200 }));
    const events = worker.events();
    worker.start();
    const first = await started;

    // The shard moves: A refuses everything with not_owner naming B; B replays the log (keeping A's leases).
    a!.queue!.stopServing(notOwner(b));
    b!.serve(await shard.takeOver());
    const takeoverAt = (await shard.events()).length;

    const late = await producer.enqueue(item("4"));
    const lateWithId = await producer.enqueue(item("5", "req-5"));
    expect(producer.endpoint).toBe(b!.url);
    expect(changes[0]).toMatchObject({ from: a!.url, to: b!.url, reason: "not_owner" });
    expect(b!.queue!.stats().lastEventSequence).toBeGreaterThan(takeoverAt);
    expect([late.sequenceId, lateWithId.sequenceId]).toEqual([4, 5]);

    // Hold the first handler past its lease length: only renewals on B keep it.
    await sleep(1_500);
    releaseFirst();
    let completed = 0;
    for await (const e of events) if (e.type === "completed" && ++completed === 5) break;

    const log = await shard.events();
    expect(perItem(log, "Completed")).toEqual(new Map([1, 2, 3, 4, 5].map((id) => [id, 1])));
    // The first item was granted once (by A), renewed on B, and completed on B with that same token.
    expect(perItem(log, "LeaseGranted").get(first.sequenceId)).toBe(1);
    expect(perItem(log, "LeaseExpired").size).toBe(0);
    const renewedOnB = log.filter(
      (e) =>
        e.eventType === "Heartbeat" && e.ownership?.sequenceId === first.sequenceId && e.sequenceNumber > takeoverAt,
    );
    expect(renewedOnB.length).toBeGreaterThan(0);
    const done = log.find((e) => e.eventType === "Completed" && e.ownership?.sequenceId === first.sequenceId);
    expect(done?.ownership).toEqual(first.ownershipToken);
    expect(done!.sequenceNumber).toBeGreaterThan(takeoverAt);
    expect(handled.map((g) => g.sequenceId).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(worker.stats()).toMatchObject({ completed: 5, fenced: 0, failed: 0 });
    expect(b!.queue!.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });

  it("a client that lists only A dials B over HTTP from the ownerUrl of A's answer, when followOwner allows it", async () => {
    const shard = sharedLog(5_000);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    const only = client({ endpoints: [a!.url], followOwner: (url) => url === b!.url });
    await only.enqueue(item("1"));
    a!.queue!.stopServing(notOwner(b));
    b!.serve(await shard.takeOver());
    expect((await only.enqueue(item("2"))).sequenceId).toBe(2);
    expect(only.endpoints).toEqual([a!.url, b!.url]);
    expect(only.endpoint).toBe(b!.url);
    expect(b!.queue!.stats().pendingCount).toBe(2);
  });

  it("stats and deadLetters on a node that lost the shard answer not_owner, and the client reads B's counts", async () => {
    const shard = sharedLog(5_000);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    const onlyA = client({ outbound: new HttpOutbound({ url: a!.url }) });
    const both = client({ endpoints: [a!.url, b!.url] });
    await both.enqueue(item("1"));
    a!.queue!.stopServing(notOwner(b));
    b!.serve(await shard.takeOver());
    await b!.queue!.enqueue(item("2"));
    for (const call of [onlyA.stats(), onlyA.deadLetters()]) {
      const error = await rejection(call);
      expect([error.code, error.metadata.owner]).toEqual([ErrorCodes.resourceLease.notOwner, "b"]);
    }
    // A still knows one pending item; the owner has two, and that is what a following client reads.
    expect(a!.queue!.stats().pendingCount).toBe(1);
    expect((await both.stats()).pendingCount).toBe(2);
    expect(both.endpoint).toBe(b!.url);
  });

  it("while nobody owns the shard, a call keeps looking (with pauses) and finds B before its deadline", async () => {
    const shard = sharedLog(5_000);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    const changes: ResourceLeaseEndpointChange[] = [];
    const c = client({ endpoints: [a!.url, b!.url], onEndpointChange: (x) => changes.push(x), timeoutMs: 10_000 });
    a!.queue!.stopServing(notOwner(undefined)); // no owner yet; B does not serve the namespace yet
    const pending = c.enqueue(item("1"));
    await sleep(300);
    b!.serve(await shard.takeOver());
    expect((await pending).sequenceId).toBe(1);
    expect(b!.queue!.stats().pendingCount).toBe(1);
    expect(changes.map((x) => x.reason)).toContain("not_served");
    expect(c.endpoint).toBe(b!.url);
  });

  it("a node that went away moves calls on; a plain enqueue is sent again only when the connection was refused", async () => {
    const shard = sharedLog(5_000);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    const pooled = client({ endpoints: [a!.url, b!.url] });
    await pooled.enqueue(item("1"));
    await a!.kill();
    b!.serve(await shard.takeOver());
    // A kept-alive socket to A now breaks mid-call (outcome unknown): an enqueue with a requestId is idempotent.
    expect((await pooled.enqueue(item("2", "req-2"))).sequenceId).toBe(2);
    expect(pooled.endpoint).toBe(b!.url);
    // A new client's connection to A is refused: nothing was sent, so even a plain enqueue goes on to B.
    const fresh = client({ endpoints: [a!.url, b!.url] });
    expect((await fresh.enqueue(item("3"))).sequenceId).toBe(3);
    expect(fresh.endpoint).toBe(b!.url);
    expect(perItem(await shard.events(), "Enqueue")).toEqual(new Map([1, 2, 3].map((id) => [id, 1])));
  });

  it("an unavailable answer of unknown outcome is not sent again unless the call is idempotent", async () => {
    const [a, b] = await nodes("a", "b");
    a!.serve(sharedLog(5_000).fresh());
    b!.serve(sharedLog(5_000).fresh());
    a!.dispatcher.use({
      handle: async () => {
        throw new OmniRelayError({
          status: "unavailable",
          code: "test.lost_mid_call",
          message: "The connection dropped after the request was read.",
        });
      },
    });
    const plain = client({ endpoints: [a!.url, b!.url] });
    expect((await rejection(plain.enqueue(item("1")))).code).toBe("test.lost_mid_call");
    expect(b!.queue!.stats().pendingCount).toBe(0); // not sent again
    expect(plain.endpoint).toBe(b!.url); // but the next call goes to B
    const keyed = client({ endpoints: [a!.url, b!.url] });
    expect((await keyed.enqueue(item("2", "req-2"))).duplicate).toBe(false);
    expect(b!.queue!.stats().pendingCount).toBe(1);
  });

  it("answers at once when no endpoint serves the namespace, and answers other errors as they are", async () => {
    const [a, b] = await nodes("a", "b");
    a!.serve(sharedLog(5_000).fresh());
    const c = client({ endpoints: [a!.url, b!.url], namespace: "nobody-serves-this", timeoutMs: 60_000 });
    expect((await rejection(c.stats())).code).toBe(ErrorCodes.rpc.procedureNotFound);
    const d = client({ endpoints: [a!.url, b!.url] });
    const token = { sequenceId: 99, attempt: 1, leaseId: "00000000-0000-4000-8000-000000000000", fencingToken: 1 };
    expect((await rejection(d.complete(token))).code).toBe(ErrorCodes.resourceLease.leaseUnknownToken);
    expect(d.endpoint).toBe(a!.url);
  });

  it("with a single outbound, not_owner comes back as it is", async () => {
    const shard = sharedLog(5_000);
    const [a, b] = await nodes("a", "b");
    a!.serve(shard.fresh());
    a!.queue!.stopServing(notOwner(b));
    const single = client({ outbound: new HttpOutbound({ url: a!.url }) });
    const error = await rejection(single.enqueue(item("1")));
    expect(error.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(error.metadata).toMatchObject({ owner: "b", ownerUrl: b!.url });
    expect(single.endpoint).toBeUndefined();
  });

  it.each([
    ["neither outbound nor endpoints", {}],
    ["both", { outbound: new HttpOutbound({ url: "http://127.0.0.1:1" }), endpoints: ["http://127.0.0.1:2"] }],
    ["no endpoints", { endpoints: [] }],
    ["a blank endpoint", { endpoints: [" "] }],
    ["a duplicate endpoint", { endpoints: ["http://127.0.0.1:2", "http://127.0.0.1:2/"] }],
    ["a non-http endpoint without connect", { endpoints: ["grpc://127.0.0.1:2"] }],
    ["a bad failover delay", { endpoints: ["http://127.0.0.1:2"], failover: { initialDelayMs: 0 } }],
  ])("refuses %s", (_, options) => {
    let error: unknown;
    try {
      new ResourceLeaseClient(options as ResourceLeaseClientOptions);
    } catch (thrown) {
      error = thrown;
    }
    expect(isOmniRelayError(error) && error.code).toBe(ErrorCodes.resourceLease.optionsInvalid);
  });
});
