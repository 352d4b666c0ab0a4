import type {
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
} from "../contracts/payload.js";
import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseQueue,
  type ResourceLeaseQueueOptions,
} from "../index.js";
import type { FakeClock } from "../testing/fake-clock.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerClient } from "./options.js";

/** A payload for tests. */
export function item(id: string | number): ResourceLeaseItemPayload {
  return { resourceType: "table", resourceId: String(id), partitionKey: `p-${id}`, payloadEncoding: "json" };
}

/** A worker client that calls a queue in-process (for fake-clock tests). */
export function queueClient(queue: ResourceLeaseQueue): ResourceLeaseWorkerClient {
  return {
    lease: (r, o) => queue.lease({ ...r, ...(o?.signal ? { signal: o.signal } : {}) }),
    heartbeat: (t) => queue.heartbeat(t),
    complete: (t) => queue.complete(t),
    completeMany: async (ts) =>
      (await queue.completeMany(ts)).map((r) =>
        r.success ? { success: true } : { success: false, code: r.error.code, message: r.error.message },
      ),
    fail: (t, r) => queue.fail(t, r),
  };
}

/** What a {@link spyClient} saw. */
export interface ClientCalls {
  leases: Array<{ maxItems?: number; waitMs?: number; peerId?: string; granted: number }>;
  heartbeats: ResourceLeaseOwnershipToken[];
  completes: ResourceLeaseOwnershipToken[][];
  fails: Array<{ token: ResourceLeaseOwnershipToken; request: Record<string, unknown> | undefined }>;
}

/** Wraps a client, recording calls; `overrides` replace methods (e.g. a heartbeat that always fails). */
export function spyClient(
  inner: ResourceLeaseWorkerClient,
  overrides: Partial<ResourceLeaseWorkerClient> = {},
): ResourceLeaseWorkerClient & { calls: ClientCalls } {
  const calls: ClientCalls = { leases: [], heartbeats: [], completes: [], fails: [] };
  const c = { ...pick(inner), ...overrides };
  return {
    calls,
    async lease(r, o) {
      const grants = await c.lease(r, o);
      calls.leases.push({ ...r, granted: grants.length });
      return grants;
    },
    heartbeat(t, o) {
      calls.heartbeats.push(t);
      return c.heartbeat(t, o);
    },
    complete(t, o) {
      calls.completes.push([t]);
      return c.complete(t, o);
    },
    completeMany(ts, o) {
      calls.completes.push([...ts]);
      return c.completeMany(ts, o);
    },
    fail(t, r, o) {
      calls.fails.push({ token: t, request: r });
      return c.fail(t, r, o);
    },
  };
}

function pick(client: ResourceLeaseWorkerClient): ResourceLeaseWorkerClient {
  return {
    lease: (r, o) => client.lease(r, o),
    heartbeat: (t, o) => client.heartbeat(t, o),
    complete: (t, o) => client.complete(t, o),
    completeMany: (ts, o) => client.completeMany(ts, o),
    fail: (t, r, o) => client.fail(t, r, o),
  };
}

/** A clock over a FakeClock that counts its own live timers (to prove the worker leaks none). */
export function countingClock(fake: FakeClock): Clock & { readonly live: number } {
  const live = new Set<TimerHandle>();
  return {
    get live() {
      return live.size;
    },
    now: () => fake.now(),
    setTimeout(callback, delayMs) {
      const handle: TimerHandle = fake.setTimeout(() => {
        live.delete(handle);
        callback();
      }, delayMs);
      live.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      fake.clearTimeout(handle);
    },
  };
}

/** Lets every pending promise chain and immediate run. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advances a fake clock in steps, letting async work react between steps. */
export async function advance(clock: FakeClock, ms: number, stepMs = 5): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.advance(Math.min(stepMs, ms - done));
    await flush();
  }
}

/** Resolves with the first event matching `predicate`. */
export async function nextEvent<T extends ResourceLeaseWorkerEvent>(
  events: AsyncIterable<ResourceLeaseWorkerEvent>,
  predicate: (e: ResourceLeaseWorkerEvent) => e is T,
): Promise<T> {
  for await (const e of events) if (predicate(e)) return e;
  throw new Error("the event stream ended first");
}

/** A promise with its resolve function exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves when `signal` aborts, with its reason. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));
}

/** The real stack: queue + component + dispatcher + HTTP inbound on 127.0.0.1:0, and HTTP clients to it. */
export async function startStack(queueOptions: ResourceLeaseQueueOptions) {
  const dispatcher = new Dispatcher({ service: "worker-test" });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions });
  const inbound = new HttpInbound({ dispatcher });
  const { url } = await inbound.start();
  const clients: ResourceLeaseClient[] = [];
  return {
    queue: component.queue,
    url,
    client(caller = "worker-test") {
      const c = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), caller });
      clients.push(c);
      return c;
    },
    async close() {
      await inbound.close({ graceMs: 100 });
      await Promise.all(clients.map((c) => c.close()));
      await component.close();
    },
  };
}

/** Grants' sequence ids, sorted. */
export const ids = (grants: readonly ResourceLeaseGrant[]) => grants.map((g) => g.sequenceId).sort((a, b) => a - b);
