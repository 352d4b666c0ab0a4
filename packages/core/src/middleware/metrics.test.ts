import type { Attributes, Meter } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import type { Logger } from "../contracts/health.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import { createOtelRpcMetricsRecorder, type RpcCallMetric, RpcMetricsMiddleware } from "./metrics.js";
import { makeRequest } from "./test-helpers.js";

function setup(options: { throwingRecorder?: boolean; clock?: FakeClock } = {}) {
  const records: RpcCallMetric[] = [];
  const warnings: unknown[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (obj) => warnings.push(obj), error() {} };
  const recorder = {
    record(metric: RpcCallMetric) {
      if (options.throwingRecorder) throw new Error("recorder down");
      records.push(metric);
    },
  };
  const clock = options.clock ?? new FakeClock();
  const dispatcher = new Dispatcher({
    service: "test-svc",
    inboundMiddleware: [new RpcMetricsMiddleware({ recorder, clock, logger })],
  });
  dispatcher.registerJson("resourcelease::complete", async () => {
    clock.advance(25);
    return { success: true };
  });
  dispatcher.registerJson("resourcelease::fail", async () => {
    clock.advance(5);
    throw new OmniRelayError({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
      message: "The lease has ended.",
    });
  });
  dispatcher.registerJson("resourcelease::crash", async () => {
    throw new Error("unexpected");
  });
  return { dispatcher, records, warnings };
}

describe("RpcMetricsMiddleware", () => {
  it("records successes with the normalised procedure name and the duration", async () => {
    const { dispatcher, records } = setup();
    await dispatcher.dispatch(makeRequest({ procedure: " ResourceLease::Complete ", caller: "raw-caller-123" }));
    expect(records).toEqual([
      { service: "test-svc", procedure: "resourcelease::complete", transport: "http", status: "ok", durationMs: 25 },
    ]);
  });

  it("records the status and code of failures, and internal for unexpected errors", async () => {
    const { dispatcher, records } = setup();
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::fail" }))).rejects.toMatchObject({
      code: "resourcelease.lease.fenced",
    });
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::crash" }))).rejects.toMatchObject({
      code: "omnirelay.internal",
    });
    expect(records).toEqual([
      expect.objectContaining({ status: "failed-precondition", code: "resourcelease.lease.fenced", durationMs: 5 }),
      expect.objectContaining({ status: "internal", code: "omnirelay.internal" }),
    ]);
  });

  it("records a call abandoned by its caller as cancelled", async () => {
    const { dispatcher, records } = setup();
    const caller = new AbortController();
    caller.abort(new Error("gone"));
    await expect(
      dispatcher.dispatch(makeRequest({ procedure: "resourcelease::crash", signal: caller.signal })),
    ).rejects.toMatchObject({ status: "cancelled" });
    expect(records[0]).toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
  });

  it("never lets a failing recorder fail or change the call", async () => {
    const { dispatcher, warnings } = setup({ throwingRecorder: true });
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::complete" }))).resolves.toHaveProperty(
      "message",
    );
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::fail" }))).rejects.toMatchObject({
      code: "resourcelease.lease.fenced",
    });
    expect(warnings).toHaveLength(2);
  });

  it("measures real durations with the system clock", async () => {
    const records: RpcCallMetric[] = [];
    const dispatcher = new Dispatcher({
      service: "test-svc",
      inboundMiddleware: [new RpcMetricsMiddleware({ recorder: { record: (m) => records.push(m) } })],
    });
    dispatcher.registerJson("resourcelease::lease", () => new Promise((resolve) => setTimeout(() => resolve({}), 30)));
    await dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    expect(records[0]?.durationMs).toBeGreaterThanOrEqual(25);
    expect(records[0]?.durationMs).toBeLessThan(300);
  });

  it("requires a recorder", () => {
    expect(() => new RpcMetricsMiddleware({} as never)).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "recorder" } }),
    );
  });
});

describe("createOtelRpcMetricsRecorder", () => {
  function fakeMeter() {
    const instruments: Array<{ kind: string; name: string; unit?: string }> = [];
    const points: Array<{ name: string; value: number; attributes?: Attributes }> = [];
    const meter = {
      createCounter(name: string, options?: { unit?: string }) {
        instruments.push({ kind: "counter", name, unit: options?.unit });
        return { add: (value: number, attributes?: Attributes) => points.push({ name, value, attributes }) };
      },
      createHistogram(name: string, options?: { unit?: string }) {
        instruments.push({ kind: "histogram", name, unit: options?.unit });
        return { record: (value: number, attributes?: Attributes) => points.push({ name, value, attributes }) };
      },
    } as unknown as Meter;
    return { meter, instruments, points };
  }

  it("writes the request counter and the duration histogram with bounded attributes", () => {
    const { meter, instruments, points } = fakeMeter();
    const recorder = createOtelRpcMetricsRecorder({ meter });
    expect(instruments).toEqual([
      { kind: "counter", name: "omnirelay.rpc.requests", unit: "{request}" },
      { kind: "histogram", name: "omnirelay.rpc.request.duration", unit: "ms" },
    ]);
    recorder.record({
      service: "svc",
      procedure: "resourcelease::fail",
      transport: "grpc",
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
      durationMs: 12,
    });
    const attributes = {
      "rpc.service": "svc",
      "rpc.method": "resourcelease::fail",
      "rpc.transport": "grpc",
      "rpc.status": "failed-precondition",
      "rpc.error_code": "resourcelease.lease.fenced",
    };
    expect(points).toEqual([
      { name: "omnirelay.rpc.requests", value: 1, attributes },
      { name: "omnirelay.rpc.request.duration", value: 12, attributes },
    ]);
  });

  it("folds procedure names beyond maxProcedures into _other", () => {
    const { meter, points } = fakeMeter();
    const recorder = createOtelRpcMetricsRecorder({ meter, maxProcedures: 2 });
    for (const procedure of ["a::x", "b::x", "c::x", "a::x"]) {
      recorder.record({ service: "svc", procedure, transport: "http", status: "ok", durationMs: 1 });
    }
    const methods = points.filter((p) => p.name === "omnirelay.rpc.requests").map((p) => p.attributes?.["rpc.method"]);
    expect(methods).toEqual(["a::x", "b::x", "_other", "a::x"]);
    expect(() => createOtelRpcMetricsRecorder({ meter, maxProcedures: 0 })).toThrow(
      expect.objectContaining({ metadata: { option: "maxProcedures" } }),
    );
  });
});
