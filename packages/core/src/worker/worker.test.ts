import { afterEach, describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseQueueOptions } from "../index.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerOptions } from "./options.js";
import { aborted, deferred, item, nextEvent, spyClient, startStack } from "./test-helpers.js";
import { ResourceLeaseWorker } from "./worker.js";

// Real parts: a ResourceLeaseQueue behind a dispatcher served over HTTP on 127.0.0.1, workers on HttpOutbound clients,
// short leases and real time.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(queueOptions: ResourceLeaseQueueOptions = { leaseDurationMs: 300 }) {
  const stack = await startStack(queueOptions);
  cleanups.push(() => stack.close());
  return stack;
}

function track(worker: ResourceLeaseWorker, release?: () => void): ResourceLeaseWorker {
  cleanups.push(async () => {
    release?.();
    await worker.close({ graceMs: 200 });
  });
  return worker;
}

function worker(options: ResourceLeaseWorkerOptions, release?: () => void): ResourceLeaseWorker {
  return track(new ResourceLeaseWorker(options), release);
}

const isType =
  <K extends ResourceLeaseWorkerEvent["type"]>(type: K) =>
  (e: ResourceLeaseWorkerEvent): e is Extract<ResourceLeaseWorkerEvent, { type: K }> =>
    e.type === type;

async function count(
  events: AsyncIterable<ResourceLeaseWorkerEvent>,
  type: ResourceLeaseWorkerEvent["type"],
  n: number,
) {
  let seen = 0;
  for await (const e of events) if (e.type === type && ++seen === n) return;
  throw new Error(`only ${seen} ${type} events`);
}

async function rejection(promise: Promise<unknown>): Promise<OmniRelayError> {
  try {
    await promise;
  } catch (error) {
    if (isOmniRelayError(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("ResourceLeaseWorker over HTTP", () => {
  it("processes every item exactly once with concurrency 4, leasing in batches", async () => {
    const stack = await setup();
    const n = 12;
    await stack.client().enqueueMany(Array.from({ length: n }, (_, i) => item(i)));
    const client = spyClient(stack.client());
    const handled: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const w = worker({
      client,
      peerId: "worker-a",
      concurrency: 4,
      leaseWaitMs: 200,
      handler: async (grant) => {
        handled.push(grant.sequenceId);
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
      },
    });
    const done = count(w.events(), "completed", n);
    w.start();
    await done;

    expect(handled.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(maxRunning).toBe(4);
    expect(w.stats()).toEqual({ inFlight: 0, leased: n, completed: n, failed: 0, fenced: 0, errors: 0 });
    // Batched leasing: a call asked for (and got) several items at once, and never more than the free slots.
    expect(client.calls.leases.some((l) => (l.maxItems ?? 1) > 1 && l.granted > 1)).toBe(true);
    expect(client.calls.leases.every((l) => (l.maxItems ?? 1) <= 4 && l.peerId === "worker-a")).toBe(true);
    expect(
      client.calls.completes
        .flat()
        .map((t) => t.sequenceId)
        .sort((a, b) => a - b),
    ).toEqual(handled);
    const stats = stack.queue.stats();
    expect([stats.pendingCount, stats.activeLeaseCount, stats.deadLetterCount]).toEqual([0, 0, 0]);
  });

  it("with prefetch, holds leased items beyond concurrency and starts them without another lease call", async () => {
    const stack = await setup({ leaseDurationMs: 2000 });
    const n = 10;
    await stack.client().enqueueMany(Array.from({ length: n }, (_, i) => item(i)));
    const client = spyClient(stack.client());
    const gate = deferred();
    const handled: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const w = worker(
      {
        client,
        peerId: "worker-p",
        concurrency: 1,
        prefetch: 3,
        leaseWaitMs: 200,
        handler: async (grant) => {
          handled.push(grant.sequenceId);
          maxRunning = Math.max(maxRunning, ++running);
          await gate.promise;
          running--;
        },
      },
      gate.resolve,
    );
    w.start();
    // One handler running, three held: four leased, and the queue shows four active leases.
    await expect.poll(() => stack.queue.stats().activeLeaseCount).toBe(4);
    expect(w.stats().inFlight).toBe(4);
    expect(handled).toEqual([1]);
    expect(client.calls.leases[0]?.maxItems).toBe(4);
    gate.resolve();
    await expect.poll(() => w.stats().completed).toBe(n);
    expect(maxRunning).toBe(1);
    expect(handled).toEqual(Array.from({ length: n }, (_, i) => i + 1)); // FIFO kept through the held items
    expect(client.calls.leases.every((l) => (l.maxItems ?? 1) <= 4)).toBe(true);
    // Fewer lease calls than items: held items started without a round trip of their own.
    expect(client.calls.leases.filter((l) => l.granted > 0).length).toBeLessThan(n);
  });

  it("on close, hands held items back at once without running them", async () => {
    const stack = await setup({ leaseDurationMs: 5000 });
    await stack.client().enqueueMany(Array.from({ length: 4 }, (_, i) => item(i)));
    const gate = deferred();
    const handled: number[] = [];
    const w = worker(
      {
        client: stack.client(),
        peerId: "worker-q",
        concurrency: 1,
        prefetch: 3,
        leaseWaitMs: 200,
        handler: async (grant) => {
          handled.push(grant.sequenceId);
          await gate.promise;
        },
      },
      gate.resolve,
    );
    w.start();
    await expect.poll(() => stack.queue.stats().activeLeaseCount).toBe(4);
    const closing = w.close({ graceMs: 5000 });
    // The held three are back in the queue while the running handler still has its grace period.
    await expect.poll(() => stack.queue.stats().pendingCount).toBe(3);
    expect(stack.queue.stats().activeLeaseCount).toBe(1);
    gate.resolve();
    await closing;
    expect(handled).toEqual([1]);
    expect(w.stats()).toMatchObject({ inFlight: 0, completed: 1, leased: 4 });
    const stats = stack.queue.stats();
    expect([stats.pendingCount, stats.activeLeaseCount]).toEqual([3, 0]);
  });

  it("on close, waits for a lease call that is being answered and hands its grants back instead of dropping them", async () => {
    const stack = await setup({ leaseDurationMs: 60_000 });
    await stack.client().enqueueMany([item(1), item(2), item(3)]);
    const real = stack.client();
    // The answer of a lease call reaches the worker 60 ms after the server committed it (a slow network): a worker
    // that cancels the call at close never sees those grants, and they stay leased to nobody for the whole lease.
    const client = spyClient(real, {
      lease: async (request, options) => {
        const grants = await real.lease(request);
        await new Promise((r) => setTimeout(r, 60));
        if (options?.signal?.aborted) throw options.signal.reason;
        return grants;
      },
    });
    const gate = deferred();
    const w = worker(
      {
        client,
        peerId: "worker-c",
        concurrency: 5,
        leaseWaitMs: 2000,
        handler: () => gate.promise,
      },
      gate.resolve,
    );
    w.start();
    await expect.poll(() => w.stats().inFlight).toBe(3);
    // The worker's next lease call is long-polling; two new items are granted to it, and the worker closes while the
    // answer is on its way.
    await stack.client().enqueueMany([item(4), item(5)]);
    await expect.poll(() => stack.queue.stats().activeLeaseCount, { interval: 1 }).toBe(5);
    const closing = w.close({ graceMs: 2000 });
    gate.resolve();
    await closing;
    const stats = stack.queue.stats();
    expect([stats.activeLeaseCount, stats.pendingCount]).toEqual([0, 2]);
    expect(w.stats()).toMatchObject({ completed: 3, leased: 5 });
  });

  it("keeps a handler that runs 3x the lease length alive with automatic heartbeats", async () => {
    const stack = await setup();
    await stack.client().enqueue(item("long"));
    const client = spyClient(stack.client());
    const attempts: number[] = [];
    let signal: AbortSignal | undefined;
    const w = worker({
      client,
      peerId: "worker-long",
      leaseWaitMs: 200,
      handler: async (grant, context) => {
        attempts.push(grant.attempt);
        signal = context.signal;
        await new Promise((r) => setTimeout(r, 900));
      },
    });
    const done = nextEvent(w.events(), isType("completed"));
    w.start();
    await done;

    expect(attempts).toEqual([1]);
    expect(signal?.aborted).toBe(false);
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(5); // every ~100 ms of a 300 ms lease
    expect(w.stats()).toMatchObject({ completed: 1, fenced: 0, failed: 0, errors: 0 });
    expect(stack.queue.stats().activeLeaseCount).toBe(0);
  });

  it("aborts a handler whose lease cannot be renewed before the deadline; the stale token is fenced", async () => {
    const stack = await setup();
    const producer = stack.client();
    await producer.enqueue(item("stuck"));
    const client = spyClient(stack.client(), {
      heartbeat: async () => {
        throw new OmniRelayError({
          status: "unavailable",
          code: "omnirelay.transport.unavailable",
          message: "network down",
        });
      },
    });
    const release = deferred();
    const started = deferred<ResourceLeaseGrant>();
    const abortedAt = deferred<{ reason: unknown; at: number }>();
    const w = worker(
      {
        client,
        peerId: "worker-stuck",
        leaseWaitMs: 200,
        handler: async (grant, { signal }) => {
          started.resolve(grant);
          const reason = await aborted(signal);
          abortedAt.resolve({ reason, at: Date.now() });
          await release.promise; // blocks on, holding its slot, like a handler stuck in a slow call
        },
      },
      () => release.resolve(),
    );
    w.start();
    const grant = await started.promise;
    const { reason, at } = await abortedAt.promise;

    expect(isOmniRelayError(reason)).toBe(true);
    expect(reason).toMatchObject({ status: "deadline-exceeded", code: ErrorCodes.resourceLease.leaseExpiredLocally });
    expect(at).toBeLessThan(grant.leaseExpiresAt);
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(1);

    // After expiry the queue hands the item to someone else...
    const other = stack.client("worker-other");
    const [regrant] = await other.lease({ peerId: "worker-other", waitMs: 2_000, maxItems: 1 });
    expect(regrant).toMatchObject({
      sequenceId: grant.sequenceId,
      attempt: 2,
      lastError: { code: "resourcelease.lease.expired" },
    });
    // ...and a late completion with the old token is refused.
    const late = await rejection(producer.complete(grant.ownershipToken));
    expect(late).toMatchObject({ status: "failed-precondition", code: "resourcelease.lease.fenced" });

    expect(client.calls.completes).toEqual([]);
    expect(client.calls.fails).toEqual([]);
    expect(w.stats()).toMatchObject({ fenced: 1, completed: 0, failed: 0, inFlight: 1 });
    await other.complete(regrant!.ownershipToken);
  });

  it("fires the signal with resourcelease.lease.fenced when a heartbeat is rejected, and never completes", async () => {
    const stack = await setup();
    const admin = stack.client("admin");
    await admin.enqueue(item("taken"));
    const client = spyClient(stack.client());
    const started = deferred<ResourceLeaseGrant>();
    const w = worker({
      client,
      peerId: "worker-fenced",
      leaseWaitMs: 200,
      handler: async (grant, { signal }) => {
        started.resolve(grant);
        await aborted(signal); // then resolves normally: the worker must still not complete
      },
    });
    const fenced = nextEvent(w.events(), isType("fenced"));
    w.start();
    const grant = await started.promise;
    await admin.fail(grant.ownershipToken, { requeue: false, reason: "taken away" });
    const event = await fenced;

    expect(event.error).toMatchObject({ status: "failed-precondition", code: "resourcelease.lease.fenced" });
    expect(event.sequenceId).toBe(grant.sequenceId);
    await w.close({ graceMs: 1_000 });
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(client.calls.completes).toEqual([]);
    expect(client.calls.fails).toEqual([]);
    expect(w.stats()).toMatchObject({ fenced: 1, completed: 0, failed: 0, inFlight: 0 });
    expect(stack.queue.stats().deadLetterCount).toBe(1);
  });

  it("fails a throwing handler's item with requeue; the next attempt carries lastError", async () => {
    const stack = await setup();
    await stack.client().enqueue(item("flaky"));
    const client = spyClient(stack.client());
    const grants: ResourceLeaseGrant[] = [];
    const w = worker({
      client,
      peerId: "worker-flaky",
      leaseWaitMs: 200,
      handler: async (grant) => {
        grants.push(grant);
        if (grant.attempt === 1) throw new Error("boom");
      },
    });
    const done = nextEvent(w.events(), isType("completed"));
    w.start();
    await done;

    expect(grants.map((g) => g.attempt)).toEqual([1, 2]);
    expect(grants[1]?.lastError).toEqual({ message: "boom", code: "resourcelease.failed" });
    expect(client.calls.fails).toHaveLength(1);
    expect(client.calls.fails[0]?.request).toMatchObject({ requeue: true, reason: "boom" });
    expect(w.stats()).toMatchObject({ leased: 2, failed: 1, completed: 1, fenced: 0 });
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0, deadLetterCount: 0 });
  });

  it("backs off a failing lease call (real time), then recovers", async () => {
    const stack = await setup();
    await stack.client().enqueue(item("later"));
    const inner = stack.client();
    const times: number[] = [];
    const client = spyClient(inner, {
      lease: async (r, o) => {
        times.push(Date.now());
        if (times.length <= 2)
          throw new OmniRelayError({
            status: "unavailable",
            code: "omnirelay.transport.unavailable",
            message: "refused",
          });
        return inner.lease(r, o);
      },
    });
    const w = worker({
      client,
      peerId: "worker-backoff",
      leaseWaitMs: 200,
      random: () => 0,
      leaseRetry: { initialDelayMs: 60, maxDelayMs: 200 },
      handler: async () => {},
    });
    const done = nextEvent(w.events(), isType("completed"));
    w.start();
    await done;
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(28); // half of 60, the jitter floor
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(58); // doubled
    expect(w.stats()).toMatchObject({ errors: 2, completed: 1 });
  });

  it("sends completions finishing within completeBatchMs as one completeMany (real time)", async () => {
    const stack = await setup();
    await stack.client().enqueueMany([item(1), item(2), item(3)]);
    const client = spyClient(stack.client());
    const w = worker({
      client,
      peerId: "worker-batch",
      concurrency: 3,
      leaseWaitMs: 200,
      completeBatchMs: 150,
      handler: async (grant) => {
        await new Promise((r) => setTimeout(r, 25 * Number(grant.payload.resourceId)));
      },
    });
    const done = count(w.events(), "completed", 3);
    w.start();
    await done;
    expect(client.calls.completes.map((b) => b.length)).toEqual([3]);
    expect(stack.queue.stats().activeLeaseCount).toBe(0);
  });

  describe("close()", () => {
    it("lets an in-flight handler finish within graceMs and leases nothing more", async () => {
      const stack = await setup();
      const producer = stack.client();
      await producer.enqueue(item("first"));
      const started = deferred();
      let signal: AbortSignal | undefined;
      const w = worker({
        client: stack.client(),
        peerId: "worker-graceful",
        leaseWaitMs: 200,
        handler: async (_grant, context) => {
          signal = context.signal;
          started.resolve();
          await new Promise((r) => setTimeout(r, 150));
        },
      });
      w.start();
      await started.promise;
      const t0 = Date.now();
      const closing = w.close({ graceMs: 2_000 });
      expect(w.state).toBe("draining");
      await producer.enqueue(item("second"));
      await closing;

      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(w.state).toBe("stopped");
      expect(signal?.aborted).toBe(false);
      expect(w.stats()).toMatchObject({ leased: 1, completed: 1, inFlight: 0 });
      expect(stack.queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
      await expect(w.closed()).resolves.toBeUndefined();
    });

    it("aborts and requeues a handler that outlives graceMs", async () => {
      const stack = await setup();
      await stack.client().enqueue(item("stubborn"));
      const client = spyClient(stack.client());
      const started = deferred<AbortSignal>();
      const release = deferred();
      const w = worker(
        {
          client,
          peerId: "worker-stubborn",
          leaseWaitMs: 200,
          handler: async (_grant, { signal }) => {
            started.resolve(signal);
            await release.promise; // ignores its signal
          },
        },
        () => release.resolve(),
      );
      w.start();
      const signal = await started.promise;
      const t0 = Date.now();
      await w.close({ graceMs: 150 });

      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      expect(signal.reason).toMatchObject({ status: "unavailable", code: ErrorCodes.worker.shuttingDown });
      expect(client.calls.fails[0]?.request).toMatchObject({ requeue: true, reason: "worker shutting down" });
      expect(w.stats()).toMatchObject({ failed: 1, completed: 0, inFlight: 0 });
      expect(stack.queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
      const [again] = await stack.client().lease({ maxItems: 1 });
      expect(again).toMatchObject({ attempt: 2, lastError: { code: ErrorCodes.worker.shuttingDown } });
    });
  });
});
