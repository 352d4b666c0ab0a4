import { createHmac, randomUUID } from "node:crypto";
import { Dispatcher, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { InMemoryResourceLeaseReplicator } from "@omnirelay/core/replication";
import {
  ResourceLeaseControlPlane as ControlPlane,
  type ResourceLeaseControlPlane,
  type ResourceLeaseControlPlaneOptions,
} from "../src/index.js";

/** Everything a test node holds; closed by {@link closeAll}. */
export interface TestNode {
  readonly control: ResourceLeaseControlPlane;
  readonly dispatcher: Dispatcher;
  readonly component: ResourceLeaseDispatcherComponent;
  readonly tracker: PeerLeaseHealthTracker;
  readonly inbound: HttpInbound;
  readonly url: string;
  readonly namespace: string;
}

const open: Array<() => Promise<void>> = [];

/** Closes everything opened by the helpers, newest first. */
export async function closeAll(): Promise<void> {
  for (const close of open.splice(0).reverse()) await close();
}

/** Registers a cleanup. */
export function onClose(close: () => Promise<void>): void {
  open.push(close);
}

/**
 * A real dispatcher with one ResourceLease shard (backpressure at 3, cleared at 1, no cooldown), a peer health
 * tracker, a tracked replication sink, the RPC metrics middleware and an HttpInbound whose fallback is the
 * control plane.
 */
export async function startNode(options: ResourceLeaseControlPlaneOptions = {}): Promise<TestNode> {
  const namespace = `billing-${randomUUID().slice(0, 8)}`;
  const dispatcher = new Dispatcher({ service: "diag-test" });
  const control = new ControlPlane({ dispatcher, ...options });
  dispatcher.use(control.rpcMetricsMiddleware());
  const tracker = new PeerLeaseHealthTracker();
  const sink = control.trackReplicationSink({ sink: "audit", shard: namespace });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    namespace,
    healthTracker: tracker,
    queueOptions: {
      backpressure: { highWatermark: 3, lowWatermark: 1, cooldownMs: 0 },
      observers: [control.eventObserver(namespace)],
      replicator: new InMemoryResourceLeaseReplicator({ sinks: [sink] }),
    },
  });
  control.addComponent(component);
  control.addHealthProvider(tracker);
  const inbound = new HttpInbound({ dispatcher, fallback: control.handler(), readiness: [control.readinessCheck()] });
  const { url } = await inbound.start();
  onClose(async () => {
    await control.close();
    await inbound.close({ graceMs: 0 });
    await component.close();
  });
  return { control, dispatcher, component, tracker, inbound, url, namespace };
}

/** Calls a procedure over HTTP and returns the parsed body (throws on a non-2xx answer). */
export async function rpc(url: string, procedure: string, body: unknown = {}): Promise<Record<string, any>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "rpc-procedure": procedure, "content-type": "application/json", "rpc-caller": "diag-test" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, any>;
  if (!res.ok) throw new Error(`${procedure} failed with ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** A payload for enqueue. */
export function payload(id: string): Record<string, unknown> {
  return { resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" };
}

/** Signs an HS256 JWT with `secret` (what an identity provider would issue). */
export function signJwt(claims: Record<string, unknown>, secret: string): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ iat: now, exp: now + 300, ...claims })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** Parses the Prometheus text format into `name → type` and the sample lines. */
export function parseExposition(text: string): { types: Map<string, string>; samples: string[] } {
  const types = new Map<string, string>();
  const samples: string[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    else if (line.length > 0 && !line.startsWith("#")) samples.push(line);
  }
  return { types, samples };
}

/** The value of the first sample whose line starts with `prefix` and contains every fragment. */
export function sampleValue(samples: readonly string[], prefix: string, ...fragments: string[]): number | undefined {
  const line = samples.find((s) => s.startsWith(prefix) && fragments.every((f) => s.includes(f)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** An open Server-Sent Events connection read as text. */
export interface SseReader {
  /** Waits until the received text matches `pattern` and returns everything received so far. */
  waitFor(pattern: RegExp): Promise<string>;
  close(): void;
}

/** Opens an SSE stream with fetch. */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  if (res.status !== 200 || !res.body) throw new Error(`SSE answered ${res.status}`);
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) throw new Error("not an event stream");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  onClose(async () => abort.abort());
  return {
    async waitFor(pattern) {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}; got ${JSON.stringify(text)}`);
        text += value;
      }
      return text;
    },
    close: () => abort.abort(),
  };
}

/** The control plane on both mounts: the RPC port (fallback) and a port of its own. */
export async function mounts(options: ResourceLeaseControlPlaneOptions = {}) {
  const node = await startNode(options);
  const own = await node.control.listen();
  onClose(() => own.close());
  return { node, bases: { "RPC port": node.url, "own port": own.url } };
}
