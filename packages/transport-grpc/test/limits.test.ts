import http2 from "node:http2";
import { Dispatcher, ErrorCodes, ResourceLeaseClient, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { PrincipalBindingMiddleware } from "@omnirelay/core/middleware";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, type GrpcInboundOptions, GrpcOutbound } from "../src/index.js";
import { recordedSession } from "./harness.js";

// What one client can make the gRPC inbound hold, on real HTTP/2 sockets (127.0.0.1): a unary request that never
// finishes arriving is cut at `requestTimeoutMs`, a connection has at most `maxConcurrentStreams` calls open, and
// worker sessions are capped per inbound and per caller.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const STATS = "/omnirelay.resourcelease.v1.ResourceLeaseService/Stats";

async function stack(options: Omit<GrpcInboundOptions, "dispatcher"> = {}, principals = false) {
  const dispatcher = new Dispatcher({
    service: "grpc-limits",
    inboundMiddleware: principals
      ? [new PrincipalBindingMiddleware({ trustedProxies: ["127.0.0.1"], acceptClientCertificates: false })]
      : [],
  });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {});
  const inbound = new GrpcInbound({ dispatcher, ...options });
  const { port } = await inbound.start();
  cleanups.push(async () => {
    await inbound.close({ graceMs: 50 });
    await component.close();
  });
  return { port, address: `127.0.0.1:${port}` };
}

/** A raw HTTP/2 connection to the inbound, closed after the test; `settled`: once the server's SETTINGS came. */
async function connect(port: number, settled = true): Promise<http2.ClientHttp2Session> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  cleanups.push(() => {
    client.destroy();
  });
  if (settled) await new Promise<void>((resolve) => client.once("remoteSettings", () => resolve()));
  return client;
}

/** A unary call that sends all but the last byte of a `length`-byte message, and never ends its stream. */
function stalledCall(client: http2.ClientHttp2Session, length: number) {
  const stream = client.request({
    ":method": "POST",
    ":path": STATS,
    "content-type": "application/grpc",
    te: "trailers",
  });
  let closed = false;
  let answer: http2.IncomingHttpHeaders | undefined;
  stream.on("response", (headers) => {
    answer = headers;
  });
  stream.on("error", () => {});
  stream.on("close", () => {
    closed = true;
  });
  stream.resume();
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(length, 1);
  stream.write(prefix);
  stream.write(Buffer.alloc(length - 1));
  return { stream, closed: () => closed, answer: () => answer };
}

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

describe("gRPC inbound: request timeout", () => {
  it("closes a unary call whose message does not finish arriving within requestTimeoutMs, not a long poll or session", async () => {
    const { port, address } = await stack({ requestTimeoutMs: 300 });
    const client = await connect(port);
    const calls = [0, 1, 2].map(() => stalledCall(client, 1024 * 1024));
    await sleep(150);
    expect(calls.some((c) => c.closed())).toBe(false);
    await until(() => calls.every((c) => c.closed()), 2000);
    expect(client.closed || client.destroyed).toBe(false); // only the calls, not the connection
    // Each got its status (a complete response) before the stream was reset.
    for (const call of calls) {
      expect(call.answer()).toMatchObject({
        "grpc-status": "4",
        "omnirelay-error-code": ErrorCodes.rpc.requestTimeout,
        "omnirelay-meta-limit_ms": "300",
      });
      expect(call.stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    }
    // A long poll whose request arrived, and a session, are not cut past requestTimeoutMs.
    const outbound = new GrpcOutbound({ address });
    const leases = new ResourceLeaseClient({ outbound, caller: "w" });
    cleanups.push(() => leases.close());
    const started = Date.now();
    await expect(leases.lease({ waitMs: 600 })).resolves.toBeDefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    const s = openSession(outbound, "w");
    await until(s.opened);
    s.channel.send({ credit: 1 });
    await sleep(500);
    expect(s.closed()).toBeUndefined();
    await leases.enqueue({ resourceType: "t", resourceId: "1", partitionKey: "p", payloadEncoding: "json" });
    await until(() => s.frames.some((f) => (f.grants?.length ?? 0) > 0));
  });
});

describe("gRPC inbound: streams per connection", () => {
  it("announces maxConcurrentStreams (default 100) and refuses a stream over it", async () => {
    const defaults = await stack();
    expect((await connect(defaults.port)).remoteSettings.maxConcurrentStreams).toBe(100);
    const { port } = await stack({ maxConcurrentStreams: 2, requestTimeoutMs: 60_000 });
    expect((await connect(port)).remoteSettings.maxConcurrentStreams).toBe(2);
    // A client that opens streams before it reads the server's SETTINGS (as an attacker may): the third is refused.
    const client = await connect(port, false);
    const calls = [0, 1, 2].map(() => stalledCall(client, 64 * 1024));
    await until(() => calls[2]?.closed() === true);
    expect(calls[2]?.stream.rstCode).toBe(http2.constants.NGHTTP2_REFUSED_STREAM);
    expect(calls[0]?.closed() || calls[1]?.closed()).toBe(false);
  });
});

/** A session through GrpcOutbound, recording what comes back. */
const openSession = (outbound: GrpcOutbound, caller: string) => recordedSession(outbound, caller, cleanups);

/** Opens sessions until one is accepted (a place given back is seen by the server a moment after the close). */
async function openedEventually(outbound: GrpcOutbound, caller: string, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const s = openSession(outbound, caller);
    await until(() => s.opened() || s.closed() !== undefined);
    if (s.opened() || Date.now() > end) return s;
    await sleep(25);
  }
}

describe("gRPC inbound: session caps", () => {
  it("refuses a caller's session over maxSessionsPerCaller, and takes it again once one ends", async () => {
    const { address } = await stack({ sessions: { maxSessionsPerCaller: 2, maxSessions: 10 } });
    const outbound = new GrpcOutbound({ address });
    cleanups.push(() => outbound.close());
    const [a, b] = [openSession(outbound, "w1"), openSession(outbound, "w2")];
    await until(() => a.opened() && b.opened());
    const c = openSession(outbound, "w3");
    await until(() => c.closed() !== undefined);
    expect(c.opened()).toBe(false);
    expect(c.closed()).toMatchObject({
      status: "resource-exhausted",
      code: ErrorCodes.rpc.sessionTooMany,
      metadata: { limit: "2", scope: "caller" },
    });
    a.channel.close(); // a normal end gives the place back
    const d = await openedEventually(outbound, "w4");
    expect(d.opened()).toBe(true);
    const e = openSession(outbound, "w5");
    await until(() => e.closed() !== undefined);
    expect(e.closed()?.code).toBe(ErrorCodes.rpc.sessionTooMany);
  });

  it("counts each principal on its own, and every caller against maxSessions", async () => {
    const { address } = await stack({ sessions: { maxSessionsPerCaller: 2, maxSessions: 3 } }, true);
    const alice = new GrpcOutbound({ address, metadata: { "x-client-principal": "alice" } });
    const bob = new GrpcOutbound({ address, metadata: { "x-client-principal": "bob" } });
    cleanups.push(
      () => alice.close(),
      () => bob.close(),
    );
    const held = [openSession(alice, "a1"), openSession(alice, "a2"), openSession(bob, "b1")];
    await until(() => held.every((s) => s.opened()));
    const over = openSession(bob, "b2");
    await until(() => over.closed() !== undefined);
    expect(over.closed()).toMatchObject({
      code: ErrorCodes.rpc.sessionTooMany,
      metadata: { limit: "3", scope: "inbound" },
    });
  });

  it("refuses bad limits when the inbound is made", () => {
    const dispatcher = new Dispatcher({ service: "grpc-limits-options" });
    for (const options of [
      { requestTimeoutMs: 0 },
      { maxConcurrentStreams: 0 },
      { sessions: { maxSessions: 0 } },
      { sessions: { maxSessionsPerCaller: 1.5 } },
    ]) {
      expect(() => new GrpcInbound({ dispatcher, ...options })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });
});
