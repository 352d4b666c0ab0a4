import { createServer } from "node:net";
import { Dispatcher, type OmniRelayError, ResourceLeaseProcedures } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, type GrpcInboundOptions, GrpcOutbound, type GrpcOutboundOptions } from "../src/index.js";
import { Cleanup, rejectionOf } from "./harness.js";

const dispatcher = new Dispatcher({ service: "lifecycle" });

function optionError(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    const e = error as OmniRelayError;
    expect(e).toMatchObject({ status: "invalid-argument", code: "resourcelease.options.invalid" });
    return e.metadata.option;
  }
  return undefined;
}

describe("GrpcInbound / GrpcOutbound lifecycle and options", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("rejects bad constructor options naming the option", () => {
    const inbound = (o: Partial<GrpcInboundOptions>) => () => new GrpcInbound({ dispatcher, ...o });
    expect(optionError(inbound({ port: -1 }))).toBe("port");
    expect(optionError(inbound({ port: 1.5 }))).toBe("port");
    expect(optionError(inbound({ maxMessageBytes: 0 }))).toBe("maxMessageBytes");
    expect(optionError(inbound({ shutdownGraceMs: -5 }))).toBe("shutdownGraceMs");
    expect(optionError(inbound({ host: " " }))).toBe("host");
    expect(optionError(() => new GrpcInbound({} as GrpcInboundOptions))).toBe("dispatcher");
    const outbound = (o: Partial<GrpcOutboundOptions>) => () => new GrpcOutbound({ address: "127.0.0.1:1", ...o });
    expect(optionError(outbound({ address: "" }))).toBe("address");
    expect(optionError(outbound({ defaultTimeoutMs: 0 }))).toBe("defaultTimeoutMs");
    expect(optionError(outbound({ metadata: { "Bad Key": "v" } }))).toBe("metadata.Bad Key");
  });

  it("start() is idempotent, reports its state, and close() is idempotent", async () => {
    const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
    expect(inbound.state).toBe("idle");
    const starting = inbound.start();
    expect(inbound.state).toBe("starting");
    const [a, b] = await Promise.all([starting, inbound.start()]);
    expect(a.port).toBeGreaterThan(0);
    expect(b.port).toBe(a.port);
    expect((await inbound.start()).port).toBe(a.port);
    expect(inbound.state).toBe("running");
    await Promise.all([inbound.close(), inbound.close()]);
    expect(inbound.state).toBe("stopped");
  });

  it("closing an inbound that never started just stops it", async () => {
    const inbound = new GrpcInbound({ dispatcher });
    await inbound[Symbol.asyncDispose]();
    expect(inbound.state).toBe("stopped");
  });

  it("a port in use is unavailable omnirelay.inbound.bind_failed and the inbound can retry", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    const inbound = cleanup.add(new GrpcInbound({ dispatcher, port }));
    try {
      const error = await rejectionOf(inbound.start());
      expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.inbound.bind_failed" });
      expect(inbound.state).toBe("idle");
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    expect((await inbound.start()).port).toBe(port);
    expect(inbound.state).toBe("running");
  });
});

describe("close() during start()", () => {
  it("leaves no listening server behind", async () => {
    const inbound = new GrpcInbound({ dispatcher });
    const starting = inbound.start();
    const closing = inbound.close();
    const { port } = await starting;
    await closing;
    expect(inbound.state).toBe("stopped");
    const outbound = new GrpcOutbound({ address: `127.0.0.1:${port}`, defaultTimeoutMs: 2000 });
    try {
      const error = await rejectionOf(
        outbound.call(ResourceLeaseProcedures.stats, {
          message: {},
          meta: {
            service: "x",
            procedure: "resourcelease::stats",
            transport: "in-process",
            headers: {},
            signal: new AbortController().signal,
          },
        }),
      );
      expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.transport.unavailable" });
    } finally {
      await outbound.close();
    }
  });
});
