import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { ResourceLeaseClient } from "../resourcelease/client.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerOptions } from "./options.js";
import { ResourceLeaseWorker } from "./worker.js";

// Shared by the tests of a worker facing a hostile or broken dispatcher: a hand-written server on 127.0.0.1 (node:http
// for the unary verbs, ws for the session) that answers whatever the test says, and workers on a real HttpOutbound.

/** A grant as a dispatcher sends it on the wire (JSON), for item `seq` under lease `leaseId` / `fencingToken`. */
export function wireGrant(seq: number, lease: { leaseId?: string; fencingToken?: number; expiresInMs?: number } = {}) {
  return {
    payload: { resourceType: "t", resourceId: `r${seq}`, partitionKey: "p", payloadEncoding: "json" },
    sequenceId: seq,
    attempt: 1,
    enqueuedAt: new Date().toISOString(),
    ownershipToken: {
      sequenceId: seq,
      attempt: 1,
      leaseId: lease.leaseId ?? `l${seq}`,
      fencingToken: lease.fencingToken ?? seq,
    },
    ownerPeerId: "w1",
    leaseExpiresAt: new Date(Date.now() + (lease.expiresInMs ?? 30_000)).toISOString(),
  };
}

/** One unary call the server got: its verb (`lease`, `complete`, …) and JSON body. */
export interface UnaryCall {
  readonly verb: string;
  readonly body: Record<string, unknown>;
}

export interface HostileServerOptions {
  /** Answers a unary verb; the default answers success (a lease with no items). */
  readonly unary?: (call: UnaryCall) => unknown;
  /** Takes an accepted session; without it, session upgrades are refused `404` route-not-found (the worker goes unary). */
  readonly session?: (ws: WebSocket, frames: Array<Record<string, unknown>>) => void;
}

/** Answers the unary verbs as a dispatcher that did what was asked. */
export function okAnswer(call: UnaryCall): unknown {
  if (call.verb === "complete") {
    const tokens = (call.body.ownershipTokens as unknown[] | undefined) ?? [0];
    return { success: true, results: tokens.map(() => ({ success: true })) };
  }
  if (call.verb === "heartbeat") return { success: true, leaseExpiresAt: Date.now() + 30_000, remainingMs: 30_000 };
  if (call.verb === "fail") return { success: true, outcome: "requeued" };
  return {};
}

/** Registers an afterEach closing every server and worker made through the returned functions. */
export function hostileHarness() {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function server(options: HostileServerOptions) {
    const calls: UnaryCall[] = [];
    let sessions = 0;
    const http = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const verb = String(req.headers["rpc-procedure"]).split("::")[1] ?? "";
        const text = Buffer.concat(chunks).toString();
        const call = { verb, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
        calls.push(call);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify((options.unary ?? okAnswer)(call)));
      });
    });
    const wss = new WebSocketServer({ noServer: true });
    http.on("upgrade", (req, socket, head) => {
      sessions++;
      if (!options.session) {
        socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nrpc-error-code: omnirelay.route.not_found\r\n\r\n");
        return;
      }
      const open = options.session;
      wss.handleUpgrade(req, socket, head, (ws) => {
        const frames: Array<Record<string, unknown>> = [];
        ws.on("error", () => {});
        ws.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString())));
        open(ws, frames);
      });
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    return { url, calls, sessions: () => sessions };
  }

  /** A started worker on `url`, its events recorded; closed after the test. */
  function worker(url: string, options: Omit<ResourceLeaseWorkerOptions, "client" | "peerId">) {
    const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), timeoutMs: 2000 });
    const events: ResourceLeaseWorkerEvent[] = [];
    const created = new ResourceLeaseWorker({
      client,
      peerId: "w1",
      leaseRetry: { initialDelayMs: 10, maxDelayMs: 50 },
      ...options,
    }).start();
    void (async () => {
      for await (const e of created.events()) events.push(e);
    })();
    cleanups.push(async () => {
      await created.close({ graceMs: 100 });
      await client.close();
    });
    return { worker: created, events };
  }

  return { server, worker };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits (up to `ms`) until `ok()` holds. */
export async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(10);
  }
}
