import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseQueue } from "../index.js";
import { EventStream, type ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerContext, ResourceLeaseWorkerOptions } from "./options.js";
import { deferred, flush, item, nextEvent, queueClient, spyClient } from "./test-helpers.js";
import { ResourceLeaseWorker } from "./worker.js";

// Lifecycle, options, events and fail decisions, against an in-process queue on real time (no timer is due in these).

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(options: Partial<ResourceLeaseWorkerOptions> = {}) {
  const queue = new ResourceLeaseQueue({ leaseDurationMs: 10_000 });
  const client = spyClient(queueClient(queue));
  const worker = new ResourceLeaseWorker({
    client,
    peerId: "unit",
    leaseWaitMs: 5_000,
    handler: async () => {},
    ...options,
  });
  cleanups.push(async () => {
    await worker.close({ graceMs: 0 });
    await queue.close();
  });
  return { queue, client, worker };
}

const failed = (e: ResourceLeaseWorkerEvent): e is Extract<ResourceLeaseWorkerEvent, { type: "failed" }> =>
  e.type === "failed";

describe("options", () => {
  const base = () => ({
    client: queueClient(new ResourceLeaseQueue()),
    peerId: "p",
    handler: async () => {},
  });
  it.each([
    ["client", { client: { lease: () => {} } }],
    ["handler", { handler: "nope" }],
    ["peerId", { peerId: "  " }],
    ["concurrency", { concurrency: 0 }],
    ["concurrency", { concurrency: 1.5 }],
    ["prefetch", { prefetch: -1 }],
    ["prefetch", { prefetch: 2.5 }],
    ["prefetch", { prefetch: 10_001 }],
    ["leaseWaitMs", { leaseWaitMs: -1 }],
    ["heartbeatFraction", { heartbeatFraction: 0 }],
    ["heartbeatFraction", { heartbeatFraction: Number.NaN }],
    ["safetyMarginMs", { safetyMarginMs: Number.POSITIVE_INFINITY }],
    ["completeBatchMs", { completeBatchMs: -5 }],
    ["failOnError", { failOnError: 1 }],
    ["leaseRetry.maxDelayMs", { leaseRetry: { initialDelayMs: 500, maxDelayMs: 100 } }],
  ])("rejects a bad %s", (option, bad) => {
    let error: unknown;
    try {
      new ResourceLeaseWorker({ ...base(), ...bad } as unknown as ResourceLeaseWorkerOptions);
    } catch (e) {
      error = e;
    }
    expect(isOmniRelayError(error)).toBe(true);
    expect(error).toMatchObject({
      status: "invalid-argument",
      code: "resourcelease.options.invalid",
      metadata: { option },
    });
  });
});

describe("lifecycle", () => {
  it("start() is idempotent and runs one loop; close() is idempotent; start() after close() throws", async () => {
    const { worker, client } = setup();
    let polls = 0;
    const lease = client.lease;
    client.lease = (r, o) => {
      polls++;
      return lease(r, o);
    };
    expect(worker.state).toBe("idle");
    expect(worker.start()).toBe(worker);
    worker.start();
    await flush();
    expect(worker.state).toBe("running");
    expect(polls).toBe(1); // one loop, its long poll still waiting
    const a = worker.close();
    const b = worker.close();
    await Promise.all([a, b, worker.closed()]);
    expect(worker.state).toBe("stopped");
    expect(() => worker.start()).toThrow(expect.objectContaining({ code: ErrorCodes.worker.closed }));
    await expect(worker.close({ graceMs: -1 })).rejects.toMatchObject({ metadata: { option: "graceMs" } });
  });

  it("close() before start() closes at once", async () => {
    const { worker, client } = setup();
    await worker.close();
    await worker.closed();
    expect(worker.state).toBe("stopped");
    expect(client.calls.leases).toEqual([]);
  });

  it("cancels the waiting long poll on close, so the queue keeps later items", async () => {
    const { worker, queue } = setup();
    worker.start();
    await flush();
    await worker.close();
    await queue.enqueue(item(1));
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
  });

  it("supports await using", async () => {
    const { queue, client } = setup();
    const handled = deferred();
    {
      await using worker = new ResourceLeaseWorker({ client, peerId: "using", handler: async () => handled.resolve() });
      worker.start();
      await queue.enqueue(item(1));
      await handled.promise;
    }
    expect(queue.stats().activeLeaseCount).toBe(0);
  });
});

describe("handler failures", () => {
  it("fails a synchronously throwing handler, with the OmniRelayError code as errorCode", async () => {
    const { worker, queue, client } = setup({
      handler: () => {
        throw new OmniRelayError({ status: "internal", code: "app.bad_input", message: "bad input" });
      },
    });
    const event = nextEvent(worker.events(), failed);
    await queue.enqueue(item(1));
    worker.start();
    expect(await event).toMatchObject({ outcome: "requeued", attempt: 1 });
    expect(client.calls.fails[0]?.request).toEqual({ requeue: true, reason: "bad input", errorCode: "app.bad_input" });
  });

  it("follows failOnError: requeue false dead-letters the item", async () => {
    const { worker, queue } = setup({
      handler: async () => {
        throw new Error("poison");
      },
      failOnError: (error) => ({
        requeue: false,
        reason: `permanent: ${(error as Error).message}`,
        errorCode: "app.poison",
      }),
    });
    const event = nextEvent(worker.events(), failed);
    await queue.enqueue(item(1));
    worker.start();
    expect(await event).toMatchObject({ outcome: "dead_lettered" });
    expect(queue.deadLetters()[0]).toMatchObject({
      reason: "failed",
      lastError: { message: "permanent: poison", code: "app.poison" },
    });
  });

  it("falls back to the default decision when failOnError throws, and reports it", async () => {
    const errors: string[] = [];
    const { worker, queue, client } = setup({
      handler: async () => {
        throw new Error("boom");
      },
      failOnError: () => {
        throw new Error("decider broke");
      },
      onError: (e) => errors.push(`${e.operation}: ${e.error.message}`),
    });
    const event = nextEvent(worker.events(), failed);
    await queue.enqueue(item(1));
    worker.start();
    await event;
    expect(errors[0]).toBe("failOnError: decider broke");
    expect(client.calls.fails[0]?.request).toMatchObject({ requeue: true, reason: "boom" });
  });
});

describe("handler context", () => {
  it("drops an invalid delayMs from failOnError and still fails the item", async () => {
    const { worker, queue, client } = setup({
      handler: async () => {
        throw new Error("slow down");
      },
      failOnError: () => ({ requeue: true, delayMs: -5 }),
    });
    const event = nextEvent(worker.events(), failed);
    await queue.enqueue(item(1));
    worker.start();
    await event;
    expect(client.calls.fails[0]?.request).toEqual({ requeue: true, reason: "slow down" });
    expect(worker.stats().errors).toBeGreaterThanOrEqual(1);
  });

  it("context.heartbeat() after the handler settled rejects with lease_settled", async () => {
    let saved: ResourceLeaseWorkerContext | undefined;
    const { worker, queue } = setup({
      handler: async (_grant, context) => {
        saved = context;
      },
    });
    const completed = nextEvent(worker.events(), (e): e is ResourceLeaseWorkerEvent => e.type === "completed");
    await queue.enqueue(item(1));
    worker.start();
    await completed;
    await expect(saved!.heartbeat()).rejects.toMatchObject({
      status: "failed-precondition",
      code: ErrorCodes.worker.leaseSettled,
    });
    expect(saved!.signal.aborted).toBe(false);
  });
});

describe("events and onError", () => {
  it("an onError that throws or rejects never escapes", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      let calls = 0;
      const { worker, client } = setup({
        leaseRetry: { initialDelayMs: 1, maxDelayMs: 2 },
        onError: (e) => {
          calls++;
          if (calls % 2) throw new Error(`sync ${e.operation}`);
          return Promise.reject(new Error("async")) as unknown as undefined;
        },
      });
      client.lease = async () => {
        throw new OmniRelayError({ status: "unavailable", code: "x.down", message: "down" });
      };
      const errors = worker.events();
      worker.start();
      let seen = 0;
      for await (const e of errors) if (e.type === "error" && ++seen === 4) break;
      await flush();
      expect(calls).toBeGreaterThanOrEqual(4);
      expect(worker.state).toBe("running");
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("ends iterations on close and honours their signal", async () => {
    const { worker } = setup();
    const stop = new AbortController();
    const a = worker.events({ signal: stop.signal });
    const b = worker.events();
    stop.abort();
    expect(await a.next()).toEqual({ value: undefined, done: true });
    await worker.close();
    expect(await b.next()).toEqual({ value: undefined, done: true });
    expect(await worker.events().next()).toEqual({ value: undefined, done: true });
  });

  it("keeps only the newest bufferSize events for a slow reader", async () => {
    const stream = new EventStream<number>();
    const it1 = stream.iterate({ bufferSize: 2 });
    for (const n of [1, 2, 3, 4]) stream.push(n);
    stream.end();
    const seen: number[] = [];
    for await (const n of it1) seen.push(n);
    expect(seen).toEqual([3, 4]);
  });
});
