// The dispatcher's lifecycle with real parts: an HTTP and a gRPC inbound on 127.0.0.1 and a queue durable in a
// SQLite file. It lives in an app because apps are where core, the gRPC transport and the SQLite log may be composed.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Dispatcher,
  HttpInbound,
  type OmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseItemPayload,
} from "@omnirelay/core";
import { openDurableResourceLeaseQueue } from "@omnirelay/replicator-sqlite";
import { GrpcInbound, GrpcOutbound } from "@omnirelay/transport-grpc";
import { afterEach, describe, expect, it } from "vitest";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function tempLog(): string {
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-lifecycle-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "events.db");
}

const item = (id: string): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: "p",
  payloadEncoding: "json",
});

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A node: a durable queue served over HTTP and gRPC by one dispatcher, nothing started. */
async function node(path: string, options: { httpPort?: number } = {}) {
  const durable = await openDurableResourceLeaseQueue({ path });
  const dispatcher = new Dispatcher({ service: "lifecycle-test" });
  // The log is added before the component that serves its queue, so it closes after it.
  dispatcher.addComponent(durable);
  new ResourceLeaseDispatcherComponent(dispatcher, { queue: durable.queue });
  const grpc = new GrpcInbound({ dispatcher });
  const http = new HttpInbound({ dispatcher, ...(options.httpPort !== undefined ? { port: options.httpPort } : {}) });
  cleanup.push(() => dispatcher.stop({ graceMs: 100 }));
  return { durable, dispatcher, grpc, http };
}

/** Pending items in the log at `path`, read by opening it again (which also proves the last owner closed it). */
async function pendingInLog(path: string): Promise<number> {
  const reopened = await openDurableResourceLeaseQueue({ path });
  try {
    return reopened.queue.stats().pendingCount;
  } finally {
    await reopened.close();
  }
}

/** A gRPC `stats` call in `namespace`; resolves with its error, if any. */
function grpcStats(port: number, namespace: string): Promise<OmniRelayError | undefined> {
  const client = new ResourceLeaseClient({ outbound: new GrpcOutbound({ address: `127.0.0.1:${port}` }), namespace });
  return client
    .stats({ timeoutMs: 10_000 })
    .then(
      () => undefined,
      (error: OmniRelayError) => error,
    )
    .finally(() => client.close());
}

function post(url: string, procedure: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "rpc-procedure": procedure },
    body: "{}",
  });
}

describe("a dispatcher with HTTP and gRPC inbounds and a SQLite-durable queue", () => {
  it("stop() lets calls in flight finish (their writes reach the log), refuses new calls, then closes the log", async () => {
    const path = tempLog();
    const { durable, dispatcher, grpc, http } = await node(path);
    // One slow procedure per transport: each waits for the test, then enqueues into the durable queue.
    const gate = deferred();
    const entered = { http: deferred(), grpc: deferred() };
    dispatcher.registerJson("test::slow", async () => {
      entered.http.resolve();
      await gate.promise;
      return { sequenceIds: (await durable.queue.enqueue(item("from-http"))).sequenceIds };
    });
    dispatcher.registerJson("resourcelease.slow::stats", async () => {
      entered.grpc.resolve();
      await gate.promise;
      await durable.queue.enqueue(item("from-grpc"));
      return { ...durable.queue.stats() };
    });
    await dispatcher.start();
    expect([dispatcher.state, http.state, grpc.state]).toEqual(["running", "running", "running"]);
    const httpCall = post(http.url, "test::slow");
    const grpcCall = grpcStats(grpc.port, "resourcelease.slow");
    await Promise.all([entered.http.promise, entered.grpc.promise]);

    const stopping = dispatcher.stop({ graceMs: 10_000 });
    expect([dispatcher.state, http.state, grpc.state]).toEqual(["draining", "draining", "draining"]);
    // New calls are refused on both transports (HTTP no longer accepts connections; gRPC answers UNAVAILABLE) …
    const refusedHttp = await post(http.url, "resourcelease::stats").then(
      (r) => r.status,
      () => "connection refused",
    );
    expect([503, "connection refused"]).toContain(refusedHttp);
    expect((await grpcStats(grpc.port, "resourcelease"))?.status).toBe("unavailable");
    // … while the queue and its log stay open for the calls in flight.
    expect(durable.queue.state).toBe("running");

    gate.resolve();
    const answered = await httpCall;
    expect(answered.status).toBe(200);
    expect(await answered.json()).toEqual({ sequenceIds: [expect.any(Number)] });
    expect(await grpcCall).toBeUndefined();
    await stopping;
    expect([dispatcher.state, http.state, grpc.state]).toEqual(["stopped", "stopped", "stopped"]);
    expect(durable.queue.state).toBe("stopped");
    await expect(
      dispatcher.dispatch({
        meta: {
          service: "x",
          procedure: "resourcelease::stats",
          transport: "in-process",
          headers: {},
          signal: new AbortController().signal,
        },
        message: {},
      }),
    ).rejects.toMatchObject({ status: "unavailable", code: "omnirelay.inbound.shutting_down" });
    // Both writes made while stopping were committed before the log closed; the file is free to open again.
    expect(await pendingInLog(path)).toBe(2);
  });

  it("start() and stop() are idempotent, and start() after stop() is refused", async () => {
    const path = tempLog();
    const { dispatcher, grpc, http } = await node(path);
    await Promise.all([dispatcher.start(), dispatcher.start()]);
    await dispatcher.start();
    expect([http.state, grpc.state]).toEqual(["running", "running"]);
    const status = (await post(http.url, "resourcelease::stats")).status;
    expect(status).toBe(200);
    expect(await grpcStats(grpc.port, "resourcelease")).toBeUndefined();
    const stopping = dispatcher.stop();
    expect(dispatcher.stop()).toBe(stopping);
    await stopping;
    await dispatcher.stop();
    await dispatcher[Symbol.asyncDispose]();
    expect([dispatcher.state, http.state, grpc.state]).toEqual(["stopped", "stopped", "stopped"]);
    const refused = { status: "failed-precondition", code: "omnirelay.lifecycle.state" };
    await expect(dispatcher.start()).rejects.toMatchObject(refused);
    expect(() => new HttpInbound({ dispatcher })).toThrow(expect.objectContaining(refused));
    expect(await pendingInLog(path)).toBe(0);
  });

  it("stop() before start() binds nothing and closes the durable queue", async () => {
    const path = tempLog();
    const { durable, dispatcher, grpc, http } = await node(path);
    await durable.queue.enqueue(item("before-start"));
    await dispatcher.stop();
    expect([dispatcher.state, http.state, grpc.state]).toEqual(["stopped", "stopped", "stopped"]);
    expect(grpc.port).toBe(0);
    expect(durable.queue.state).toBe("stopped");
    expect(await pendingInLog(path)).toBe(1);
  });

  it("a start() that fails (HTTP port in use) stops the gRPC inbound it started and closes the log", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const path = tempLog();
    const { durable, dispatcher, grpc, http } = await node(path, {
      httpPort: (blocker.address() as { port: number }).port,
    });
    const error = (await dispatcher.start().catch((e: unknown) => e)) as OmniRelayError & { code: string };
    expect(error.code).toBe("EADDRINUSE");
    expect([dispatcher.state, grpc.state, http.state]).toEqual(["stopped", "stopped", "stopped"]);
    expect(durable.queue.state).toBe("stopped");
    expect(await pendingInLog(path)).toBe(0);
  });

  it("closes everything with `await using`", async () => {
    const path = tempLog();
    let seen: { http: string; grpc: string } | undefined;
    {
      const { durable, dispatcher, grpc, http } = await node(path);
      await using running = dispatcher;
      await running.start();
      await durable.queue.enqueue(item("kept"));
      seen = { http: http.state, grpc: grpc.state };
    }
    expect(seen).toEqual({ http: "running", grpc: "running" });
    expect(await pendingInLog(path)).toBe(1);
  });
});
