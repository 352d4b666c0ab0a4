import { connect as http2Connect } from "node:http2";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { maxDeadlineHorizonMs } from "@omnirelay/core/middleware";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcOutbound } from "../src/index.js";
import { Cleanup, callJson, componentStack, deferred, rawRpc } from "./harness.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.closeAll());
const stack = (options: Parameters<typeof componentStack>[1] = {}) => componentStack(cleanup, options);
const call = rawRpc;

/** A gRPC Drain sent over raw HTTP/2 with the given `grpc-timeout`, as a client that ignores its own deadline. */
function rawDrain(port: number, grpcTimeout: string): Promise<Record<string, unknown>> {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/omnirelay.resourcelease.v1.ResourceLeaseService/Drain",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": grpcTimeout,
    });
    let headers: Record<string, unknown> = {};
    stream.on("response", (h) => {
      headers = { ...headers, ...h };
    });
    stream.on("trailers", (t) => {
      headers = { ...headers, ...t };
    });
    stream.on("data", () => undefined);
    stream.on("end", () => resolve(headers));
    stream.on("error", reject);
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // one uncompressed, empty DrainRequest
  }).finally(() => session.close());
}

describe("call deadlines over gRPC", () => {
  it("a drain whose deadline has already passed is refused with DEADLINE_EXCEEDED before it runs", async () => {
    const { component, client, port } = await stack();
    const expired: Array<Record<string, string>> = [{ "rpc-ttl-ms": "0" }, { "rpc-deadline": "2000-01-01T00:00:00Z" }];
    for (const extra of expired) {
      const { error } = await call(client, "drain", { metadata: extra });
      expect(error?.code, JSON.stringify(extra)).toBe(GrpcStatus.DEADLINE_EXCEEDED);
      expect(error?.metadata.get("omnirelay-error-code")).toEqual(["omnirelay.deadline_exceeded"]);
    }
    // A client that sends its call although its grpc-timeout is spent (grpc-js reads both as 0 ms). A timeout of
    // 1 ms is not tested: the call may arrive and finish within that millisecond, and then it rightly runs.
    for (const timeout of ["1n", "0m"]) {
      const answer = await rawDrain(port, timeout);
      expect(answer["grpc-status"], timeout).toBe(String(GrpcStatus.DEADLINE_EXCEEDED));
    }
    expect(component.queue.stats()).toMatchObject({ state: "running", pendingCount: 2 });
  });

  it("rpc-deadline takes only RFC 3339 date-times with a zone, rpc-ttl-ms only whole milliseconds", async () => {
    const { component, client } = await stack();
    for (const [header, value] of [
      ["rpc-deadline", "Dec 25 1999"],
      ["rpc-deadline", "42"],
      ["rpc-deadline", "2026-01-01T00:00:00"],
      ["rpc-ttl-ms", "1e3"],
    ] as const) {
      const { error } = await call(client, "drain", { metadata: { [header]: value } });
      expect(error?.code, value).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(error?.metadata.get("omnirelay-error-code")).toEqual(["omnirelay.request.invalid_header"]);
      expect(error?.metadata.get("omnirelay-meta-header")).toEqual([header]);
    }
    expect(component.queue.stats()).toMatchObject({ state: "running", pendingCount: 2 });
  });

  it("an absurdly far deadline is clamped, not refused and not an instant timeout", async () => {
    const { dispatcher, client, port } = await stack({ empty: true });
    const deadlines: Array<number | undefined> = [];
    dispatcher.use({
      handle: (request, next) => {
        deadlines.push(request.meta.deadline);
        return next(request);
      },
    });
    const before = Date.now();
    const farHeaders: Array<Record<string, string>> = [
      { "rpc-ttl-ms": "99999999999999999999" },
      { "rpc-deadline": "9999-12-31T23:59:59Z" },
    ];
    for (const extra of farHeaders) {
      const { error, value } = await call(client, "stats", { metadata: extra });
      expect(error, JSON.stringify(extra)).toBeUndefined();
      expect(value?.state).toBe("running");
    }
    // The client's deadline (30 s) is the earliest, so it wins.
    expect(deadlines).toHaveLength(2);
    expect(deadlines.every((d) => d !== undefined && d <= Date.now() + 30_000)).toBe(true);
    // A far deadline through our own outbound: grpc-js would misread a grpc-timeout past 2^31 ms.
    const outbound = cleanup.add(new GrpcOutbound({ address: `127.0.0.1:${port}` }));
    const started = Date.now();
    const far = await callJson(outbound, "resourcelease::lease", {
      body: { waitMs: 300 },
      deadline: Date.now() + 30 * 86_400_000,
    });
    expect(far.json).toEqual({});
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(deadlines.at(-1)).toBeGreaterThanOrEqual(before + maxDeadlineHorizonMs - 60_000);
    expect(deadlines.at(-1)).toBeLessThanOrEqual(Date.now() + maxDeadlineHorizonMs);
  });

  it("runs deadlines on the dispatcher's injected clock, with one timer per call", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1)); // long before the wall clock
    const { dispatcher, client } = await stack({ dispatcher: { clock } });
    const entered = deferred<number | undefined>();
    dispatcher.registerJson("resourcelease.slow::stats", async (_body, meta) => {
      entered.resolve(meta.deadline);
      await new Promise((resolve) => meta.signal.addEventListener("abort", resolve, { once: true }));
      return {};
    });
    const answer = call(client, "stats", { metadata: { "rpc-namespace": "resourcelease.slow", "rpc-ttl-ms": "1000" } });
    expect(await entered.promise).toBe(clock.now() + 1000);
    // The deadline is enforced once, by the dispatcher: the inbound only read it.
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1000);
    expect((await answer).error?.code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    const stats = await call(client, "stats", { metadata: { "rpc-deadline": "2000-01-01T00:00:05Z" } });
    expect(stats.error).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it("applies the dispatcher's deadline rules to gRPC calls: maxTimeoutMs caps the client's deadline", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1));
    const { dispatcher, client } = await stack({ dispatcher: { clock, deadlines: { maxTimeoutMs: 2000 } } });
    const seen: Array<number | undefined> = [];
    dispatcher.use({
      handle: (request, next) => {
        seen.push(request.meta.deadline);
        return next(request);
      },
    });
    expect((await call(client, "stats", { metadata: { "rpc-ttl-ms": "60000" } })).error).toBeUndefined();
    expect((await call(client, "stats", { metadata: { "rpc-ttl-ms": "500" } })).error).toBeUndefined();
    expect(seen).toEqual([clock.now() + 2000, clock.now() + 500]);
  });
});
