import {
  Dispatcher,
  ErrorCodes,
  OmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseGrant,
  ResourceLeaseQueue,
  type ResourceLeaseReplicationEvent,
  ResourceLeaseWorker,
} from "@omnirelay/core";
import { InMemoryResourceLeaseEventLog } from "@omnirelay/core/replication";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound } from "../src/index.js";
import { Cleanup, deferred } from "./harness.js";

// Core's ResourceLeaseClient and ResourceLeaseWorker following a shard from node A to node B over gRPC: two
// dispatchers behind GrpcInbounds on free loopback ports share one durable log; A stops serving with
// resourcelease.not_owner naming B (as an ownership guard does) and B rebuilds from the log keeping active leases.
// The client dials URLs with a connect factory that builds GrpcOutbounds, the way a user of core wires gRPC in.

const cleanup = new Cleanup();
afterEach(() => cleanup.closeAll());

const LEASE_MS = 900;

interface GrpcNode {
  readonly url: string;
  readonly dispatcher: Dispatcher;
  readonly inbound: GrpcInbound;
  queue?: ResourceLeaseQueue;
}

async function node(): Promise<GrpcNode> {
  const dispatcher = new Dispatcher({ service: "grpc-failover" });
  const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
  const { port } = await inbound.start();
  return { url: `grpc://127.0.0.1:${port}`, dispatcher, inbound };
}

function serve(target: GrpcNode, queue: ResourceLeaseQueue): void {
  cleanup.add(new ResourceLeaseDispatcherComponent(target.dispatcher, { queue }));
  target.queue = queue;
}

const connect = (url: string) => new GrpcOutbound({ address: new URL(url).host });

function client(urls: string[]): ResourceLeaseClient {
  // The owners the nodes name are theirs: followed even when the list holds only one of them.
  return cleanup.add(
    new ResourceLeaseClient({ endpoints: urls, connect, caller: "grpc-failover", followOwner: () => true }),
  );
}

const item = (id: string, requestId?: string) => ({
  resourceType: "job",
  resourceId: id,
  partitionKey: `p-${id}`,
  payloadEncoding: "json",
  ...(requestId ? { requestId } : {}),
});

function notOwner(owner: GrpcNode): OmniRelayError {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.notOwner,
    message: "Node b owns the shard now.",
    metadata: { owner: "b", ownerUrl: owner.url, shard: "resourcelease" },
  });
}

async function eventsOf(log: InMemoryResourceLeaseEventLog): Promise<ResourceLeaseReplicationEvent[]> {
  const out: ResourceLeaseReplicationEvent[] = [];
  for await (const e of log.read(1)) out.push(e);
  return out;
}

function perItem(events: readonly ResourceLeaseReplicationEvent[], type: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const e of events) {
    const id = e.ownership?.sequenceId ?? e.item?.sequenceId;
    if (e.eventType === type && id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

const takeOver = (log: InMemoryResourceLeaseEventLog) =>
  ResourceLeaseQueue.rebuild(log.read(1), { replicator: log, leaseDurationMs: LEASE_MS }, { activeLeases: "keep" });

describe("failover over gRPC", () => {
  it("a client and a worker listing only A follow not_owner to B; A's lease completes on B with its token", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    const [a, b] = [await node(), await node()];
    serve(a, new ResourceLeaseQueue({ replicator: log, leaseDurationMs: LEASE_MS }));
    const producer = client([a.url]);
    for (const id of ["1", "2"]) await producer.enqueue(item(id));

    const hold = deferred();
    const firstStarted = deferred<ResourceLeaseGrant>();
    const handled: number[] = [];
    const worker = new ResourceLeaseWorker({
      client: client([a.url]),
      peerId: "w",
      leaseWaitMs: 200,
      handler: async (grant) => {
        handled.push(grant.sequenceId);
        if (handled.length === 1) {
          firstStarted.resolve(grant);
          await hold.promise;
        }
      },
    });
    cleanup.add({ close: () => worker.close({ graceMs: 200 }) });
    const events = worker.events();
    worker.start();
    const first = await firstStarted.promise;

    a.queue!.stopServing(notOwner(b));
    serve(b, await takeOver(log));
    const takeoverAt = (await eventsOf(log)).length;
    expect((await producer.enqueue(item("3"))).sequenceId).toBe(3);
    expect(producer.endpoint).toBe(b.url);

    await new Promise((resolve) => setTimeout(resolve, 1_400)); // past the lease: only renewals on B keep it
    hold.resolve();
    let completed = 0;
    for await (const e of events) if (e.type === "completed" && ++completed === 3) break;

    const all = await eventsOf(log);
    expect(perItem(all, "Completed")).toEqual(new Map([1, 2, 3].map((id) => [id, 1])));
    expect(perItem(all, "LeaseGranted").get(first.sequenceId)).toBe(1);
    expect(perItem(all, "LeaseExpired").size).toBe(0);
    const done = all.find((e) => e.eventType === "Completed" && e.ownership?.sequenceId === first.sequenceId);
    expect(done?.ownership).toEqual(first.ownershipToken);
    expect(done!.sequenceNumber).toBeGreaterThan(takeoverAt);
    expect(worker.stats()).toMatchObject({ completed: 3, fenced: 0 });
    expect(b.queue!.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });

  it("a node that went away moves calls to the next endpoint; a refused connection resends a plain enqueue", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    const [a, b] = [await node(), await node()];
    serve(a, new ResourceLeaseQueue({ replicator: log, leaseDurationMs: LEASE_MS }));
    const pooled = client([a.url, b.url]);
    await pooled.enqueue(item("1"));
    await a.inbound.close();
    serve(b, await takeOver(log));
    expect((await pooled.enqueue(item("2", "req-2"))).sequenceId).toBe(2);
    expect(pooled.endpoint).toBe(b.url);
    const fresh = client([a.url, b.url]);
    expect((await fresh.enqueue(item("3"))).sequenceId).toBe(3);
    expect(fresh.endpoint).toBe(b.url);
    expect(perItem(await eventsOf(log), "Enqueue")).toEqual(new Map([1, 2, 3].map((id) => [id, 1])));
  });
});
