import { connect, createServer, type Server, type Socket } from "node:net";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import {
  Dispatcher,
  ErrorCodes,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseGrant,
  type ResourceLeaseQueueOptions,
  type ResourceLeaseReplicationEvent,
  ResourceLeaseWorker,
  type UnaryInboundMiddleware,
} from "@omnirelay/core";
import { AuthorizationMiddleware, PrincipalBindingMiddleware } from "@omnirelay/core/middleware";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ResourceLeaseServiceService } from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound, GrpcOutbound } from "../src/index.js";
import { recordedSession } from "./harness.js";

// Worker sessions on the bidirectional `Session` rpc, real HTTP/2 sockets on 127.0.0.1: credit, pushed grants,
// complete-and-next, a socket killed mid-lease, auth at open, malformed frames, and ResourceLeaseWorker on it.

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const item = (id: number) => ({
  resourceType: "t",
  resourceId: String(id),
  partitionKey: `p-${id}`,
  payloadEncoding: "json",
});
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface StackOptions {
  queue?: ResourceLeaseQueueOptions;
  middleware?: UnaryInboundMiddleware[];
  pingIntervalMs?: number;
  healthTracker?: PeerLeaseHealthTracker;
}

async function stack(options: StackOptions = {}) {
  const dispatcher = new Dispatcher({ service: "grpc-session", inboundMiddleware: options.middleware ?? [] });
  const events: ResourceLeaseReplicationEvent[] = [];
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    queueOptions: { leaseDurationMs: 2000, ...options.queue, observers: [(e) => events.push(e)] },
    ...(options.healthTracker ? { healthTracker: options.healthTracker } : {}),
  });
  const pings = options.pingIntervalMs ? { pingIntervalMs: options.pingIntervalMs } : {};
  const inbound = new GrpcInbound({ dispatcher, sessions: { idleTimeoutMs: 5000, ...pings } });
  const { port } = await inbound.start();
  const address = `127.0.0.1:${port}`;
  const outbound = new GrpcOutbound({ address, metadata: { "x-client-principal": "alice" } });
  const client = new ResourceLeaseClient({ outbound, caller: "unary" });
  cleanups.push(async () => {
    await inbound.close({ graceMs: 100 });
    await client.close();
    await component.close();
  });
  return { address, port, queue: component.queue, client, events, outbound };
}

/** A session through the real GrpcOutbound, recording what comes back; closed after the test. */
const open = (outbound: GrpcOutbound, caller = "worker-a") => recordedSession(outbound, caller, cleanups);

/**
 * Forwards 127.0.0.1:port to `target`; `kill()` destroys every connection through it, `freeze()` stops carrying bytes
 * either way while the sockets stay open (a link that went down without a FIN or RST).
 */
async function proxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    inbound.on("data", (chunk) => frozen || outbound.write(chunk));
    outbound.on("data", (chunk) => frozen || inbound.write(chunk));
    inbound.on("end", () => outbound.end());
    outbound.on("end", () => inbound.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const relay = {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    freeze: () => {
      frozen = true;
    },
    kill: () => {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        relay.kill();
        server.close(() => resolve());
      }),
  };
  cleanups.push(relay.close);
  return relay;
}

describe("worker sessions over gRPC", () => {
  it("pushes grants up to the credit, answers settlements by id, and leases the next on a completion", async () => {
    const s = await stack();
    await s.client.enqueueMany([1, 2, 3, 4].map(item));
    const w = open(s.outbound);
    await w.until(w.opened);
    w.channel.send({ credit: 2 });
    await w.until(() => w.grants().length === 2);
    await sleep(150);
    expect(w.grants()).toHaveLength(2);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 2 });
    const [first, second] = w.grants() as [ResourceLeaseGrant, ResourceLeaseGrant];
    w.channel.send({ complete: [{ id: 1, ownershipToken: first.ownershipToken }], credit: 1 });
    await w.until(() => w.result(1) !== undefined && w.grants().length === 3);
    expect(w.result(1)).toEqual({ id: 1 });
    w.channel.send({
      heartbeat: [{ id: 2, ownershipToken: second.ownershipToken }],
      fail: [{ id: 3, ownershipToken: w.grants()[2]!.ownershipToken, reason: "boom", requeue: true, delayMs: 0 }],
    });
    await w.until(() => w.result(2) !== undefined && w.result(3) !== undefined);
    expect(w.result(2)).toMatchObject({ id: 2, remainingMs: 2000 });
    expect(typeof w.result(2)?.leaseExpiresAt).toBe("number");
    expect(w.result(3)).toMatchObject({ id: 3, outcome: "requeued" });
    const granted = s.events.filter((e) => e.eventType === "LeaseGranted");
    expect(new Set(granted.map((e) => e.peerId))).toEqual(new Set(["worker-a"]));
  });

  it("a socket killed mid-lease releases nothing early and grants nothing twice", async () => {
    const s = await stack({ queue: { leaseDurationMs: 1500 } });
    const relay = await proxy(s.port);
    const viaRelay = new GrpcOutbound({ address: relay.address });
    cleanups.push(() => viaRelay.close());
    await s.client.enqueueMany([1, 2].map(item));
    const w = open(viaRelay);
    await w.until(w.opened);
    w.channel.send({ credit: 1 });
    await w.until(() => w.grants().length === 1);
    const [held] = w.grants() as [ResourceLeaseGrant];
    expect(relay.kill()).toBeGreaterThan(0);
    await w.until(() => w.closed() !== undefined);
    expect(w.closed()?.status).toBe("unavailable");
    await sleep(100);
    expect(s.queue.stats()).toMatchObject({ activeLeaseCount: 1, pendingCount: 1 });
    const other = await s.client.lease({ maxItems: 10, waitMs: 0 });
    expect(other.map((g) => g.sequenceId)).toEqual([2]);
    // The worker's next session renews and completes the held lease.
    const again = open(s.outbound);
    await again.until(again.opened);
    again.channel.send({ heartbeat: [{ id: 1, ownershipToken: held.ownershipToken }] });
    again.channel.send({ complete: [{ id: 2, ownershipToken: held.ownershipToken }] });
    await again.until(() => again.result(1) !== undefined && again.result(2) !== undefined);
    expect(again.result(1)).toMatchObject({ remainingMs: 1500 });
    expect(again.result(2)).toEqual({ id: 2 });
    const ids = s.events.filter((e) => e.eventType === "LeaseGranted").map((e) => e.ownership?.sequenceId);
    expect(ids.sort()).toEqual([1, 2]);
  });

  it("a worker whose connection drops is marked disconnected (session-lost) at once; one that closes its session is not", async () => {
    // A grace far longer than the test: only the way each session ends can mark its peer.
    const healthTracker = new PeerLeaseHealthTracker({ gracePeriodMs: 60_000 });
    const s = await stack({ healthTracker });
    const peer = (id: string) => healthTracker.snapshot().find((p) => p.peerId === id);
    const relay = await proxy(s.port);
    const viaRelay = new GrpcOutbound({ address: relay.address });
    cleanups.push(() => viaRelay.close());
    const gone = open(viaRelay, "worker-gone");
    const leaving = open(s.outbound, "worker-leaving");
    await gone.until(gone.opened);
    await leaving.until(leaving.opened);
    gone.channel.send({ credit: 1 });
    leaving.channel.send({ credit: 1 });
    await s.client.enqueueMany([1, 2].map(item));
    await gone.until(() => gone.grants().length === 1);
    await leaving.until(() => leaving.grants().length === 1);
    expect(peer("worker-gone")?.isHealthy).toBe(true);
    relay.kill(); // the worker's process died or its link went away
    leaving.channel.close(); // the worker ended its session
    await sleep(300);
    expect(peer("worker-gone")).toMatchObject({ isHealthy: false, metadata: { "disconnect.reason": "session-lost" } });
    expect(peer("worker-leaving")?.isHealthy).toBe(true);
    expect(peer("worker-leaving")?.metadata["disconnect.reason"]).toBeUndefined();
    expect(s.queue.stats()).toMatchObject({ activeLeaseCount: 2, pendingCount: 0 }); // leases untouched either way
  });

  it("keepalive pings cut off a worker whose link went silent: its session ends, its peer is marked disconnected, and it is sent no more grants", async () => {
    const healthTracker = new PeerLeaseHealthTracker({ gracePeriodMs: 60_000 });
    const s = await stack({ pingIntervalMs: 200, healthTracker });
    const relay = await proxy(s.port);
    const viaRelay = new GrpcOutbound({ address: relay.address });
    cleanups.push(() => viaRelay.close());
    const w = open(viaRelay);
    await w.until(w.opened);
    w.channel.send({ credit: 5 });
    await sleep(100);
    relay.freeze();
    // Unanswered pings close the connection within two intervals; items enqueued after that stay in the queue.
    await sleep(800);
    await s.client.enqueueMany([1, 2].map(item));
    await sleep(200);
    expect(s.events.filter((e) => e.eventType === "LeaseGranted")).toHaveLength(0);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
    // Marked at the cut, not after the grace (a minute here).
    expect(healthTracker.snapshot().find((p) => p.peerId === "worker-a")).toMatchObject({
      isHealthy: false,
      metadata: { "disconnect.reason": "session-lost" },
    });
  });

  it("answers a malformed frame and too much credit with coded errors, and keeps serving", async () => {
    const s = await stack();
    // Raw bytes that are not a SessionClientFrame.
    const raw = new Client(s.address, credentials.createInsecure());
    cleanups.push(async () => raw.close());
    const method = ResourceLeaseServiceService.session;
    const call = raw.makeBidiStreamRequest(method.path, (b: Buffer) => b, method.responseDeserialize, new Metadata());
    const status = new Promise<{ code: number; metadata: Metadata }>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    call.on("data", () => {});
    call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    const s1 = await status;
    expect(s1.code).toBe(3); // INVALID_ARGUMENT
    expect(s1.metadata.get("omnirelay-error-code")).toEqual([ErrorCodes.rpc.sessionFrameInvalid]);
    const w = open(s.outbound);
    await w.until(w.opened);
    w.channel.send({ credit: 1001 });
    await w.until(() => w.closed() !== undefined);
    expect(w.closed()?.code).toBe(ErrorCodes.rpc.sessionCreditExceeded);
    await s.client.enqueue(item(1));
    expect(await s.client.lease({ waitMs: 0 })).toHaveLength(1);
  });

  it("refuses a session whose deadline metadata is malformed, as a unary call with it is refused", async () => {
    const s = await stack();
    const raw = new Client(s.address, credentials.createInsecure());
    cleanups.push(async () => raw.close());
    const method = ResourceLeaseServiceService.session;
    const metadata = new Metadata();
    metadata.set("rpc-ttl-ms", "abc");
    const call = raw.makeBidiStreamRequest(method.path, (b: Buffer) => b, method.responseDeserialize, metadata);
    const status = new Promise<{ code: number; metadata: Metadata }>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    call.on("data", () => {});
    const refused = await status;
    expect(refused.code).toBe(3); // INVALID_ARGUMENT
    expect(refused.metadata.get("omnirelay-error-code")).toEqual([ErrorCodes.rpc.requestInvalidHeader]);
  });

  it("refuses an unauthenticated session when auth is on, and accepts an authorized one", async () => {
    const s = await stack({
      middleware: [
        new PrincipalBindingMiddleware({ trustedProxies: ["127.0.0.1"], acceptClientCertificates: false }),
        new AuthorizationMiddleware({ rules: [{ principals: ["alice"], procedures: ["resourcelease::*"] }] }),
      ],
    });
    const anonymous = new GrpcOutbound({ address: s.address });
    cleanups.push(() => anonymous.close());
    const refused = open(anonymous);
    await refused.until(() => refused.closed() !== undefined);
    expect(refused.opened()).toBe(false);
    expect(refused.closed()?.code).toBe(ErrorCodes.auth.required);
    const w = open(s.outbound); // metadata x-client-principal: alice, from a trusted address
    await w.until(w.opened);
    await s.client.enqueue(item(1));
    w.channel.send({ credit: 1 });
    await w.until(() => w.grants().length === 1);
    const granted = s.events.find((e) => e.eventType === "LeaseGranted");
    expect([granted?.peerId, granted?.principal]).toEqual(["worker-a", "alice"]);
  });

  it("a stop is answered stopped: the credit left is dropped, settlements go on, and a closing worker strands nothing", async () => {
    const s = await stack({ queue: { leaseDurationMs: 60_000 } });
    await s.client.enqueueMany([item(1)]);
    const w = open(s.outbound);
    await w.until(w.opened);
    w.channel.send({ credit: 5 });
    await w.until(() => w.grants().length === 1);
    w.channel.send({ stop: true });
    await w.until(() => w.frames.some((f) => f.stopped === true));
    await s.client.enqueueMany([item(2)]);
    w.channel.send({ credit: 1, complete: [{ id: 1, ownershipToken: w.grants()[0]!.ownershipToken }] });
    await w.until(() => w.result(1) !== undefined);
    await sleep(100);
    expect(w.grants()).toHaveLength(1);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
    // A worker holding credit closes; what is enqueued straight after stays in the queue.
    const client = new ResourceLeaseClient({ outbound: new GrpcOutbound({ address: s.address }), caller: "w" });
    cleanups.push(() => client.close());
    const worker = new ResourceLeaseWorker({ client, peerId: "w", concurrency: 2, prefetch: 2, handler: () => {} });
    worker.start();
    const end = Date.now() + 5000;
    while (worker.stats().completed < 1 && Date.now() < end) await sleep(10);
    await worker.close();
    await s.client.enqueueMany([item(3), item(4)]);
    await sleep(300);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
  });

  it("ResourceLeaseWorker uses the session by default over GrpcOutbound", async () => {
    const s = await stack();
    const n = 20;
    await s.client.enqueueMany(Array.from({ length: n }, (_, i) => item(i)));
    const client = new ResourceLeaseClient({ outbound: new GrpcOutbound({ address: s.address }), caller: "w" });
    cleanups.push(() => client.close());
    const unaryLease = vi.spyOn(client, "lease");
    const handled: number[] = [];
    const worker = new ResourceLeaseWorker({
      client,
      peerId: "w",
      concurrency: 3,
      handler: async (grant) => {
        handled.push(grant.sequenceId);
      },
    });
    cleanups.push(() => worker.close({ graceMs: 100 }));
    worker.start();
    const end = Date.now() + 5000;
    while (worker.stats().completed < n && Date.now() < end) await sleep(10);
    expect(handled.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(unaryLease).not.toHaveBeenCalled();
    expect(s.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });
});
