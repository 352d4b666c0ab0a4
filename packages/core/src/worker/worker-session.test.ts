import { connect, createServer, type Server, type Socket } from "node:net";
import { describe, expect, it, vi } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseClient } from "../resourcelease/client.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import { deferred, item } from "./test-helpers.js";
import { count, httpHarness } from "./test-http-harness.js";

// ResourceLeaseWorker on its session stream (the default over HttpOutbound), real HTTP on 127.0.0.1. A TCP proxy in
// front of the inbound lets a test kill the worker's sockets mid-lease.

/** Forwards 127.0.0.1:port to `target`; `kill()` destroys every connection through it. */
async function proxy(target: string): Promise<{ url: string; kill: () => number; close: () => Promise<void> }> {
  const { port } = new URL(target);
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(port), "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    kill: () => {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("ResourceLeaseWorker on a session stream", () => {
  const { setup, worker } = httpHarness();

  it("processes every item once with no unary lease call, completing and leasing the next in one frame", async () => {
    const stack = await setup({ leaseDurationMs: 2000 });
    const n = 30;
    await stack.client().enqueueMany(Array.from({ length: n }, (_, i) => item(i)));
    const client = stack.client("worker-a");
    const unaryLease = vi.spyOn(client, "lease");
    const unaryComplete = vi.spyOn(client, "completeMany");
    const handled: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const w = worker({
      client,
      peerId: "worker-a",
      concurrency: 4,
      handler: async (grant) => {
        handled.push(grant.sequenceId);
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      },
    });
    const done = count(w.events(), "completed", n);
    w.start();
    await done;
    expect(handled.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(maxRunning).toBe(4); // the credit never let more in than the free slots
    expect(unaryLease).not.toHaveBeenCalled();
    expect(unaryComplete).not.toHaveBeenCalled();
    expect(w.stats()).toEqual({ inFlight: 0, leased: n, completed: n, failed: 0, fenced: 0, errors: 0 });
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });

  it("with session: false, uses the unary verbs", async () => {
    const stack = await setup();
    await stack.client().enqueue(item(1));
    const client = stack.client("worker-a");
    const unaryLease = vi.spyOn(client, "lease");
    const openSession = vi.spyOn(client, "openSession");
    const w = worker({ client, peerId: "worker-a", leaseWaitMs: 100, session: false, handler: async () => {} });
    const done = count(w.events(), "completed", 1);
    w.start();
    await done;
    expect(unaryLease).toHaveBeenCalled();
    expect(openSession).not.toHaveBeenCalled();
  });

  it("goes on with unary lease calls when the dispatcher serves no sessions", async () => {
    const stack = await setup();
    await stack.client().enqueue(item(1));
    const client = stack.client("worker-a");
    // A dispatcher from before sessions answers the upgrade 404 omnirelay.route.not_found.
    client.openSession = (options) => {
      setImmediate(() =>
        options.onClose(
          new OmniRelayError({ status: "not-found", code: ErrorCodes.rpc.routeNotFound, message: "No route." }),
        ),
      );
      return { send: () => {}, close: () => {} };
    };
    const unaryLease = vi.spyOn(client, "lease");
    const w = worker({ client, peerId: "worker-a", leaseWaitMs: 100, handler: async () => {} });
    const done = count(w.events(), "completed", 1);
    w.start();
    await done;
    expect(unaryLease).toHaveBeenCalled();
  });

  it("when its socket is killed mid-lease: keeps the lease, reconnects, renews, completes; nothing granted twice", async () => {
    const stack = await setup({ leaseDurationMs: 400 });
    const relay = await proxy(stack.url);
    const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url: relay.url }), caller: "worker-a" });
    const started = deferred();
    const release = deferred();
    const handled: number[] = [];
    const w = worker(
      {
        client,
        peerId: "worker-a",
        concurrency: 1,
        leaseRetry: { initialDelayMs: 20, maxDelayMs: 100 },
        handler: async (grant, context) => {
          handled.push(grant.sequenceId);
          started.resolve();
          await release.promise; // runs past the 400 ms lease: only renewals keep it
          expect(context.signal.aborted).toBe(false);
        },
      },
      () => release.resolve(),
    );
    const events: ResourceLeaseWorkerEvent[] = [];
    void (async () => {
      for await (const e of w.events()) events.push(e);
    })();
    await stack.client().enqueueMany([item(1), item(2)]);
    w.start();
    await started.promise;
    expect(relay.kill()).toBeGreaterThan(0); // the session's socket (and any other) dies: no close handshake
    // Another worker polls meanwhile: it gets item 2 (pending), never item 1 (still leased to worker-a).
    const other = stack.client("worker-b");
    const taken = await other.lease({ maxItems: 10, waitMs: 0 });
    expect(taken.map((g) => g.sequenceId)).toEqual([2]);
    await other.complete(taken[0]!.ownershipToken);
    await new Promise((r) => setTimeout(r, 900)); // two lease lengths: renewed through the new session
    expect(stack.queue.stats()).toMatchObject({ activeLeaseCount: 1, pendingCount: 0 });
    const done = count(w.events(), "completed", 1);
    release.resolve();
    await done;
    expect(handled).toEqual([1]);
    expect(w.stats()).toMatchObject({ completed: 1, fenced: 0 });
    expect(events.some((e) => e.type === "error" && e.error.code === ErrorCodes.rpc.sessionClosed)).toBe(true);
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
    await w.close();
    await client.close();
    await relay.close();
  });
});
