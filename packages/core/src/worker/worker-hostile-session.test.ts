import { createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseClient } from "../resourcelease/client.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import { hostileHarness, sleep, until, wireGrant } from "./test-hostile-server.js";
import { ResourceLeaseWorker } from "./worker.js";

// A worker's session against a broken or hostile dispatcher: one that never answers the upgrade, one that sends an
// `error` frame (the last frame) and then goes on, and one that spells a result's status by its wire name.

const h = hostileHarness();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const errors = (events: ResourceLeaseWorkerEvent[]) =>
  events.flatMap((e) =>
    e.type === "error" ? [{ operation: e.operation, status: e.error.status, code: e.error.code }] : [],
  );

describe("ResourceLeaseWorker session against a hostile dispatcher", () => {
  it("gives up on a session the server never answers after sessionOpenTimeoutMs, reports it and opens another", async () => {
    let connections = 0;
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.resume(); // read (and drop) the upgrade request, never answer it; see the client's FIN
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url: `http://127.0.0.1:${port}` }) });
    const events: ResourceLeaseWorkerEvent[] = [];
    const worker = new ResourceLeaseWorker({
      client,
      peerId: "w1",
      handler: async () => {},
      sessionOpenTimeoutMs: 100,
      leaseRetry: { initialDelayMs: 10, maxDelayMs: 20 },
      onError: (e) => events.push(e),
    }).start();
    cleanups.push(async () => {
      await worker.close({ graceMs: 0 });
      await client.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    await until(() => connections >= 2 && events.length >= 1, 2000);
    expect(errors(events)[0]).toEqual({
      operation: "lease",
      status: "deadline-exceeded",
      code: ErrorCodes.rpc.deadlineExceeded,
    });
    // The stalled upgrade's socket was closed, not left open beside the next one.
    await until(() => sockets.size <= 1, 1000);
  });

  it("ends the session at an error frame: a grant sent after it is not run, and the worker opens a new session", async () => {
    let handled = 0;
    let framesAfterError = 0;
    const server = await h.server({
      session: (ws, frames) => {
        let erred = false;
        ws.on("message", () => {
          if (erred) {
            framesAfterError++;
            return;
          }
          if (!frames.at(-1)!.credit) return;
          erred = true;
          const error = { status: "UNAVAILABLE", code: "omnirelay.inbound.shutting_down", message: "bye" };
          ws.send(JSON.stringify({ error }));
          ws.send(JSON.stringify({ grants: [wireGrant(1)] })); // after the last frame
        });
      },
    });
    const { events } = h.worker(server.url, {
      handler: async () => {
        handled++;
      },
    });
    await until(() => server.sessions() >= 2, 2000);
    expect(handled).toBe(0);
    expect(framesAfterError).toBe(0);
    // The error frame's error, its wire-name status parsed.
    expect(errors(events)[0]).toEqual({
      operation: "lease",
      status: "unavailable",
      code: "omnirelay.inbound.shutting_down",
    });
  });

  it("backs off from sessions that end at once, as from sessions that do not open", async () => {
    const server = await h.server({
      session: (ws) => {
        const error = { status: "UNAVAILABLE", code: "omnirelay.inbound.shutting_down", message: "bye" };
        ws.send(JSON.stringify({ error }));
      },
    });
    h.worker(server.url, { handler: async () => {}, leaseRetry: { initialDelayMs: 20, maxDelayMs: 400 } });
    await sleep(1_200);
    // With the backoff doubling from 20 ms (jittered, capped at 400 ms) a second holds about ten sessions; reset after
    // each open session it reopened every ~15 ms, about eighty.
    expect(server.sessions()).toBeGreaterThanOrEqual(3);
    expect(server.sessions()).toBeLessThanOrEqual(16);
  });

  it("reads a result's wire-name status (INVALID_ARGUMENT): a refused completion is not retried", async () => {
    let completes = 0;
    const server = await h.server({
      session: (ws, frames) => {
        let sent = false;
        ws.on("message", () => {
          const f = frames.at(-1)!;
          if (f.credit && !sent) {
            sent = true;
            ws.send(JSON.stringify({ grants: [wireGrant(1, { expiresInMs: 3000 })] }));
          }
          for (const op of (f.complete as Array<{ id: number }> | undefined) ?? []) {
            completes++;
            const refused = {
              status: "INVALID_ARGUMENT",
              code: "resourcelease.argument.invalid",
              message: "bad token",
            };
            ws.send(JSON.stringify({ results: [{ id: op.id, ...refused }] }));
          }
        });
      },
    });
    const { worker, events } = h.worker(server.url, { handler: async () => {} });
    await until(() => worker.stats().fenced === 1 || completes > 1, 2000);
    expect(completes).toBe(1);
    expect(worker.stats()).toMatchObject({ completed: 0, fenced: 1 });
    const fenced = events.find((e) => e.type === "fenced");
    expect(fenced).toMatchObject({ error: { cause: { status: "invalid-argument" } } });
    expect(errors(events).filter((e) => e.operation === "complete")).toEqual([]);
  });
});
