import { WebSocket } from "ws";
import type { ResourceLeaseReplicationEvent } from "../../contracts/events.js";
import type { ResourceLeaseGrant } from "../../contracts/payload.js";
import { Dispatcher } from "../../dispatcher/dispatcher.js";
import type { PeerLeaseHealthTracker } from "../../peers/peer-lease-health-tracker.js";
import type { ResourceLeaseQueueOptions } from "../../queue/options.js";
import { ResourceLeaseClient } from "../../resourcelease/client.js";
import { ResourceLeaseDispatcherComponent } from "../../resourcelease/component.js";
import { HttpInbound } from "./inbound.js";
import type { HttpInboundSessionOptions } from "./inbound-options.js";
import { HttpOutbound } from "./outbound.js";

// Shared by the worker-session tests over HTTP: a dispatcher served on 127.0.0.1, and sessions spoken by hand on a
// real WebSocket. Each importing file runs `afterEach(closeAll)`: a hook registered here would run only in the first
// test file of a vitest worker, which shares its modules between files.

export const cleanups: Array<() => Promise<void>> = [];

/** Closes everything made through the harness (and pushed on `cleanups`) since the last call, newest first. */
export async function closeAll(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export interface StackOptions {
  queue?: ResourceLeaseQueueOptions;
  sessions?: HttpInboundSessionOptions;
  dispatcher?: Dispatcher;
  healthTracker?: PeerLeaseHealthTracker;
}

export async function stack(options: StackOptions = {}) {
  const dispatcher = options.dispatcher ?? new Dispatcher({ service: "session-test" });
  const events: ResourceLeaseReplicationEvent[] = [];
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    queueOptions: { leaseDurationMs: 2000, ...options.queue, observers: [(e) => events.push(e)] },
    ...(options.healthTracker ? { healthTracker: options.healthTracker } : {}),
  });
  const inbound = new HttpInbound({ dispatcher, ...(options.sessions ? { sessions: options.sessions } : {}) });
  const { url } = await inbound.start();
  const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), caller: "unary" });
  cleanups.push(async () => {
    await inbound.close({ graceMs: 100 });
    await client.close();
    await component.close();
  });
  return { url, queue: component.queue, client, events, inbound };
}

/** A hand-driven session: every frame received is kept; `next` waits for one that matches. */
export async function session(
  url: string,
  headers: Record<string, string> = { "rpc-caller": "worker-a" },
  autoPong = true,
) {
  const ws = new WebSocket(`${url.replace("http", "ws")}/omnirelay/session/resourcelease`, { headers, autoPong });
  const frames: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on("message", (data: Buffer) => {
    frames.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  ws.on("close", (code, reason) => {
    closed = { code, reason: reason.toString() };
    for (const w of waiters.splice(0)) w();
  });
  cleanups.push(async () => {
    ws.terminate();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const until = async (ok: () => boolean, ms = 2000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out; frames: ${JSON.stringify(frames)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  };
  const grants = () => frames.flatMap((f) => (f.grants as ResourceLeaseGrant[] | undefined) ?? []);
  return {
    ws,
    frames,
    grants,
    send: (frame: unknown) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    until,
    closed: () => closed,
    result: (id: number) =>
      frames.flatMap((f) => (f.results as Array<Record<string, unknown>> | undefined) ?? []).find((r) => r.id === id),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The HTTP answer to a session upgrade that was refused. */
export const refusal = (url: string, headers: Record<string, string>) =>
  new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/omnirelay/session/resourcelease`, { headers });
    ws.on("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0, code: res.headers["rpc-error-code"] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.on("open", () => reject(new Error("the session was accepted")));
    ws.on("error", () => {});
  });
