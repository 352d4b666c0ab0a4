import { AsyncLocalStorage } from "node:async_hooks";
import { type Context, type ContextManager, context, ROOT_CONTEXT, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { RequestMeta, UnaryInboundMiddleware } from "../dispatcher/types.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { PrincipalBindingMiddleware } from "./principal-binding.js";
import { makeRequest, recordingDispatcher } from "./test-helpers.js";
import { formatTraceparent, parseTraceparent } from "./trace-context.js";
import { RpcTracingMiddleware } from "./tracing.js";

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const parentId = "00f067aa0ba902b7";
const traceparent = `00-${traceId}-${parentId}-01`;

function setup(extra: { before?: UnaryInboundMiddleware[]; after?: UnaryInboundMiddleware[] } = {}) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const middleware = new RpcTracingMiddleware({ tracer: provider.getTracer("test") });
  const { dispatcher, seen } = recordingDispatcher(
    [...(extra.before ?? []), middleware, ...(extra.after ?? [])],
    ["resourcelease.billing::complete", "resourcelease::fail"],
  );
  dispatcher.registerJson("resourcelease::reject", async () => {
    throw new OmniRelayError({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
      message: "The lease has ended.",
    });
  });
  dispatcher.registerJson("resourcelease::crash", async () => {
    throw new Error("db password=hunter2");
  });
  const spans = () => exporter.getFinishedSpans();
  return { dispatcher, seen, spans };
}

/** A minimal AsyncLocalStorage context manager, as the Node SDK registers. */
class TestContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  // ContextManager.with(ctx, fn, thisArg?, ...args): `rest` is [thisArg, ...args], exactly what fn.call takes.
  readonly with: ContextManager["with"] = (ctx, fn, ...rest) => this.storage.run(ctx, () => fn.call(...rest));
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

describe("traceparent parsing", () => {
  it("accepts valid version-00 and future-version headers", () => {
    expect(parseTraceparent(` ${traceparent} `)).toMatchObject({
      traceId,
      spanId: parentId,
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent(`01-${traceId}-${parentId}-00-more-fields`)).toMatchObject({ traceId, traceFlags: 0 });
    expect(parseTraceparent(traceparent, "vendor=abc,other=1")?.traceState?.get("vendor")).toBe("abc");
  });

  it("rejects malformed headers", () => {
    for (const bad of [
      undefined,
      "",
      "garbage",
      traceparent.toUpperCase(),
      `00-${"0".repeat(32)}-${parentId}-01`,
      `00-${traceId}-${"0".repeat(16)}-01`,
      `ff-${traceId}-${parentId}-01`,
      `00-${traceId}-${parentId}-01-extra`,
      `00-${traceId.slice(1)}-${parentId}-01`,
      `0-${traceId}-${parentId}-01`,
    ]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
  });

  it("formats a span context and refuses an invalid one", () => {
    expect(formatTraceparent({ traceId, spanId: parentId, traceFlags: 1 })).toBe(traceparent);
    expect(formatTraceparent({ traceId: "0".repeat(32), spanId: parentId, traceFlags: 1 })).toBeUndefined();
  });
});

describe("RpcTracingMiddleware", () => {
  it("continues the caller's trace with a SERVER span carrying the RPC attributes", async () => {
    const { dispatcher, spans } = setup();
    const response = await dispatcher.dispatch(
      makeRequest({
        procedure: "resourcelease.billing::Complete",
        caller: "worker-7",
        shardKey: "shard-3",
        principal: "svc-a",
        headers: { traceparent, tracestate: "vendor=abc", authorization: "Bearer secret-token" },
      }),
    );
    const [span] = spans();
    expect(spans()).toHaveLength(1);
    expect(span?.name).toBe("resourcelease.billing::Complete");
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(traceId);
    expect(span?.parentSpanContext?.spanId).toBe(parentId);
    expect(span?.spanContext().traceState?.get("vendor")).toBe("abc");
    expect(span?.attributes).toEqual({
      "rpc.system": "omnirelay",
      "rpc.service": "test-svc",
      "rpc.method": "resourcelease.billing::Complete",
      "rpc.transport": "http",
      "rpc.peer": "worker-7",
      "rpc.shard_key": "shard-3",
      "rpc.principal": "svc-a",
      "resourcelease.operation": "complete",
    });
    expect(span?.status.code).toBe(SpanStatusCode.OK);
    expect(JSON.stringify(span?.attributes)).not.toContain("secret-token");
    expect(response.headers?.traceparent).toBe(`00-${traceId}-${span?.spanContext().spanId}-01`);
  });

  it("starts a new root trace when traceparent is missing or invalid", async () => {
    const { dispatcher, spans } = setup();
    await dispatcher.dispatch(makeRequest({ procedure: "resourcelease::fail" }));
    await dispatcher.dispatch(makeRequest({ procedure: "resourcelease::fail", headers: { traceparent: "00-zz" } }));
    expect(spans()).toHaveLength(2);
    for (const span of spans()) {
      expect(span.parentSpanContext).toBeUndefined();
      expect(span.spanContext().traceId).not.toBe(traceId);
      expect(span.attributes["resourcelease.operation"]).toBe("fail");
    }
  });

  it("marks failed calls with status ERROR and the error code, hiding unexpected messages", async () => {
    const { dispatcher, spans } = setup();
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::reject" }))).rejects.toMatchObject({
      code: "resourcelease.lease.fenced",
    });
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::crash" }))).rejects.toMatchObject({
      code: "omnirelay.internal",
    });
    const [rejected, crashed] = spans();
    expect(rejected?.status).toEqual({ code: SpanStatusCode.ERROR, message: "The lease has ended." });
    expect(rejected?.attributes["rpc.error_code"]).toBe("resourcelease.lease.fenced");
    expect(crashed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(crashed?.attributes["rpc.error_code"]).toBe("omnirelay.internal");
    expect(JSON.stringify({ s: crashed?.status, a: crashed?.attributes, e: crashed?.events })).not.toContain("hunter2");
  });

  it("gets rpc.principal from principal binding running inside the span", async () => {
    const manager = new TestContextManager();
    context.setGlobalContextManager(manager);
    try {
      const secret = new TextEncoder().encode("a-test-secret-that-is-at-least-32-bytes-long!");
      const token = await new SignJWT({ sub: "svc-b" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("1m")
        .sign(secret);
      const { dispatcher, spans, seen } = setup({ after: [new PrincipalBindingMiddleware({ jwt: { key: secret } })] });
      await dispatcher.dispatch(
        makeRequest({ procedure: "resourcelease::fail", headers: { authorization: `Bearer ${token}` } }),
      );
      expect((seen[0] as RequestMeta).principal).toBe("svc-b");
      expect(spans()[0]?.attributes["rpc.principal"]).toBe("svc-b");
      expect(JSON.stringify(spans()[0]?.attributes)).not.toContain(token);
    } finally {
      context.disable();
    }
  });
});
