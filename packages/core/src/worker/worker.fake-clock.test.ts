import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseQueue, type ResourceLeaseQueueOptions } from "../index.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerClient, ResourceLeaseWorkerContext, ResourceLeaseWorkerOptions } from "./options.js";
import { advance, countingClock, deferred, flush, item, queueClient, spyClient } from "./test-helpers.js";
import { ResourceLeaseWorker } from "./worker.js";

// Time rules on a FakeClock: the worker and the queue share it, so minutes of lease time run in milliseconds.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const unavailable = () =>
  new OmniRelayError({ status: "unavailable", code: "omnirelay.transport.unavailable", message: "network down" });
const ejected = (retryAfterMs: string) =>
  new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.resourceLease.peerEjected,
    message: "ejected",
    metadata: { retryAfterMs },
  });

function setup(
  options: {
    queue?: ResourceLeaseQueueOptions;
    client?: (inner: ResourceLeaseWorkerClient, clock: FakeClock) => Partial<ResourceLeaseWorkerClient>;
    worker?: Partial<ResourceLeaseWorkerOptions>;
  } = {},
) {
  const fake = new FakeClock();
  const clock = countingClock(fake);
  const queue = new ResourceLeaseQueue({ clock: fake, leaseDurationMs: 3_000, ...options.queue });
  const inner = queueClient(queue);
  const client = spyClient(inner, options.client?.(inner, fake) ?? {});
  const contexts: ResourceLeaseWorkerContext[] = [];
  const releases: Array<() => void> = [];
  const events: ResourceLeaseWorkerEvent[] = [];
  const worker = new ResourceLeaseWorker({
    client,
    peerId: "fake-worker",
    clock,
    leaseWaitMs: 1_000,
    handler: async (_grant, context) => {
      contexts.push(context);
      const gate = deferred();
      releases.push(() => gate.resolve());
      await gate.promise;
    },
    ...options.worker,
  });
  void (async () => {
    for await (const e of worker.events()) events.push(e);
  })();
  /** Closes the worker while moving fake time, so its grace and retry timers can run. */
  const close = async (graceMs = 0) => {
    let done = false;
    const closing = worker.close({ graceMs }).finally(() => {
      done = true;
    });
    for (let i = 0; i < 2_000 && !done; i++) await advance(fake, 10);
    await closing;
  };
  cleanups.push(async () => {
    for (const r of releases) r();
    await close();
    await queue.close();
  });
  return { fake, clock, queue, client, worker, contexts, releases, events, close };
}

describe("heartbeats (fake clock)", () => {
  it("renews at heartbeatFraction of the lease, then again from each renewal", async () => {
    const { fake, queue, client, worker, contexts } = setup();
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    const t0 = fake.now();
    expect(contexts).toHaveLength(1);
    expect(contexts[0]?.leaseExpiresAt).toBe(t0 + 3_000);

    await advance(fake, 995);
    expect(client.calls.heartbeats).toHaveLength(0);
    await advance(fake, 5);
    expect(client.calls.heartbeats).toHaveLength(1);
    expect(contexts[0]?.leaseExpiresAt).toBe(t0 + 1_000 + 3_000);
    await advance(fake, 1_000);
    expect(client.calls.heartbeats).toHaveLength(2);
    await advance(fake, 10_000);
    expect(client.calls.heartbeats).toHaveLength(12);
    expect(contexts[0]?.signal.aborted).toBe(false);
  });

  it("retries a transiently failing renewal and aborts at the deadline minus safetyMarginMs", async () => {
    const { fake, queue, client, worker, contexts, events } = setup({
      queue: { leaseDurationMs: 30_000 },
      client: () => ({
        heartbeat: async () => {
          throw unavailable();
        },
      }),
    });
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    const signal = contexts[0]!.signal;
    await advance(fake, 28_900, 50);
    await advance(fake, 95, 5);
    expect(signal.aborted).toBe(false);
    await advance(fake, 5, 5); // t = 29 000 = deadline − 1 000
    expect(signal.reason).toMatchObject({
      status: "deadline-exceeded",
      code: ErrorCodes.resourceLease.leaseExpiredLocally,
      cause: { code: "omnirelay.transport.unavailable" },
    });
    // First try at 10 s, then retries until the local deadline.
    expect(client.calls.heartbeats.length).toBeGreaterThan(5);
    const heartbeatErrors = events.filter((e) => e.type === "error" && e.operation === "heartbeat");
    expect(heartbeatErrors.length).toBe(client.calls.heartbeats.length);
    expect(events.filter((e) => e.type === "fenced")).toHaveLength(1);
    expect(worker.stats()).toMatchObject({ fenced: 1, inFlight: 1 });
  });

  it("with heartbeatFraction >= 1 never renews by itself; the margin is clamped to a quarter of a short lease", async () => {
    const { fake, queue, client, worker, contexts } = setup({ worker: { heartbeatFraction: 1 } });
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    await advance(fake, 2_245);
    expect(contexts[0]?.signal.aborted).toBe(false);
    await advance(fake, 5); // 3 000 − min(1 000, 3 000 / 4)
    expect(contexts[0]?.signal.reason).toMatchObject({ code: ErrorCodes.resourceLease.leaseExpiredLocally });
    expect(client.calls.heartbeats).toHaveLength(0);
    // The queue still holds the lease: the worker stopped before the server deadline.
    expect(queue.stats().activeLeaseCount).toBe(1);
  });

  it("context.heartbeat() renews explicitly and moves the local deadline", async () => {
    const { fake, queue, worker, contexts } = setup({ worker: { heartbeatFraction: 1 } });
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    const ctx = contexts[0]!;
    await advance(fake, 2_000);
    await ctx.heartbeat();
    expect(ctx.leaseExpiresAt).toBe(fake.now() + 3_000);
    await advance(fake, 2_245);
    expect(ctx.signal.aborted).toBe(false);
    await advance(fake, 5);
    expect(ctx.signal.aborted).toBe(true);
    await expect(ctx.heartbeat()).rejects.toMatchObject({ code: ErrorCodes.resourceLease.leaseExpiredLocally });
  });

  it("a handler may take heartbeat off its context and call it alone; the context shows only its documented fields", async () => {
    const { fake, queue, worker, contexts } = setup({ worker: { heartbeatFraction: 1 } });
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    const ctx = contexts[0]!;
    const { heartbeat, attempt } = ctx;
    expect(attempt).toBe(1);
    expect(ctx.heartbeat).toBe(heartbeat); // the same function every time it is read
    await advance(fake, 2_000);
    await heartbeat();
    expect(ctx.leaseExpiresAt).toBe(fake.now() + 3_000);
    // Nothing of the worker's run is reachable from the handler's context.
    expect(Object.keys(ctx)).toEqual(["attempt"]);
    expect(JSON.parse(JSON.stringify(ctx))).toEqual({ attempt: 1 });
  });

  it("treats an unknown token as a lost lease", async () => {
    const { queue, worker, contexts, client } = setup({
      client: () => ({
        heartbeat: async () => {
          throw new OmniRelayError({
            status: "not-found",
            code: "resourcelease.lease.unknown_token",
            message: "never issued",
          });
        },
      }),
    });
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    await expect(contexts[0]!.heartbeat()).rejects.toMatchObject({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
    });
    expect(contexts[0]?.signal.reason).toMatchObject({
      code: "resourcelease.lease.fenced",
      cause: { code: "resourcelease.lease.unknown_token" },
    });
    expect(client.calls.completes).toEqual([]);
  });
});

describe("leasing (fake clock)", () => {
  it("backs off a failing lease call exponentially with jitter, capped, and resets after a success", async () => {
    const times: number[] = [];
    const { fake, worker, events } = setup({
      worker: { random: () => 0, leaseRetry: { initialDelayMs: 100, maxDelayMs: 1_000 } },
      client: (inner, clock) => ({
        lease: async (r, o) => {
          times.push(clock.now());
          if (times.length === 4) return inner.lease(r, o); // empty after waitMs
          throw unavailable();
        },
      }),
    });
    worker.start();
    await flush();
    await advance(fake, 4_000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // With random() = 0 each delay is half its ceiling; the 4th call succeeds (an empty 1 000 ms poll) and resets it.
    expect(gaps.slice(0, 4)).toEqual([50, 100, 200, 1_000]);
    expect(gaps.slice(4, 9)).toEqual([50, 100, 200, 400, 500]); // capped at maxDelayMs / 2
    const leaseErrors = events.filter((e) => e.type === "error" && e.operation === "lease");
    expect(leaseErrors[0]).toMatchObject({ retryInMs: 50, error: { code: "omnirelay.transport.unavailable" } });
  });

  it("waits the retryAfterMs a lease refusal carries (an ejected peer) before asking again, capped", async () => {
    const times: number[] = [];
    const { fake, worker, events } = setup({
      worker: { random: () => 0, leaseRetry: { initialDelayMs: 100, maxDelayMs: 1_000 } },
      client: (inner, clock) => ({
        lease: async (r, o) => {
          times.push(clock.now());
          if (times.length === 1) throw ejected("30000");
          if (times.length === 2) throw ejected("9999999999"); // absurd: capped at 15 minutes
          return inner.lease(r, o);
        },
      }),
    });
    worker.start();
    await flush();
    await advance(fake, 30_000 + 15 * 60_000 + 10);
    expect(times[1]! - times[0]!).toBe(30_000);
    expect(times[2]! - times[1]!).toBe(15 * 60_000);
    const leaseErrors = events.filter((e) => e.type === "error" && e.operation === "lease");
    expect(leaseErrors[0]).toMatchObject({ retryInMs: 30_000, error: { code: ErrorCodes.resourceLease.peerEjected } });
  });

  it("pauses between empty polls when leaseWaitMs is 0 instead of spinning", async () => {
    const { fake, worker, client } = setup({ worker: { leaseWaitMs: 0 } });
    worker.start();
    await advance(fake, 1_000);
    expect(client.calls.leases.length).toBeGreaterThanOrEqual(10);
    expect(client.calls.leases.length).toBeLessThanOrEqual(11);
  });

  it("asks for the free slots only and hands back extra grants", async () => {
    const { queue, worker, client, contexts } = setup({
      worker: { concurrency: 2 },
      client: (inner) => ({ lease: (r, o) => inner.lease({ ...r, maxItems: (r.maxItems ?? 1) + 1 }, o) }),
    });
    await queue.enqueueMany([item(1), item(2), item(3)]);
    worker.start();
    await flush();
    expect(client.calls.leases[0]).toMatchObject({ maxItems: 2, granted: 3 });
    expect(contexts).toHaveLength(2);
    expect(client.calls.fails).toHaveLength(1);
    expect(client.calls.fails[0]?.request).toMatchObject({
      requeue: true,
      errorCode: ErrorCodes.worker.noFreeSlot,
    });
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 2 });
  });
});

describe("completion (fake clock)", () => {
  it("batches completions that arrive within completeBatchMs into one completeMany", async () => {
    const { fake, queue, worker, client, releases } = setup({ worker: { concurrency: 3, completeBatchMs: 100 } });
    await queue.enqueueMany([item(1), item(2), item(3)]);
    worker.start();
    await flush();
    releases[0]!();
    await flush();
    await advance(fake, 30);
    releases[1]!();
    await flush();
    await advance(fake, 30);
    releases[2]!();
    await flush();
    await advance(fake, 35);
    expect(client.calls.completes).toEqual([]);
    await advance(fake, 5);
    expect(client.calls.completes.map((b) => b.length)).toEqual([3]);
    expect(worker.stats()).toMatchObject({ completed: 3 });
    expect(queue.stats().activeLeaseCount).toBe(0);
  });

  it("batches same-tick completions with the default window of 0", async () => {
    const { queue, worker, client, releases } = setup({ worker: { concurrency: 3 } });
    await queue.enqueueMany([item(1), item(2), item(3)]);
    worker.start();
    await flush();
    for (const r of releases) r();
    await flush();
    expect(client.calls.completes.map((b) => b.length)).toEqual([3]);
    expect(worker.stats()).toMatchObject({ completed: 3 });
  });

  it("counts a completion rejected as fenced without throwing, and keeps working", async () => {
    const { fake, queue, worker, releases, events } = setup({ worker: { concurrency: 2, completeBatchMs: 50 } });
    await queue.enqueueMany([item(1), item(2)]);
    worker.start();
    await flush();
    const leased = events.flatMap((e) => (e.type === "leased" ? [e.grant] : []));
    releases[0]!();
    releases[1]!();
    await flush();
    await queue.fail(leased[0]!.ownershipToken, { requeue: false }); // taken away before the batch goes out
    await advance(fake, 50);
    expect(worker.stats()).toMatchObject({ completed: 1, fenced: 1 });
    const fenced = events.find((e) => e.type === "fenced");
    expect(fenced).toMatchObject({ sequenceId: leased[0]!.sequenceId, error: { code: "resourcelease.lease.fenced" } });
    await queue.enqueue(item(3));
    await flush();
    expect(worker.stats().leased).toBe(3);
  });

  it("retries a transiently failing complete while the lease lasts, then gives the lease up", async () => {
    let failures = 1;
    const { fake, queue, worker, client, releases, events } = setup({
      client: (inner) => ({
        complete: async (t) => {
          if (failures-- > 0) throw unavailable();
          return inner.complete(t);
        },
      }),
    });
    await queue.enqueueMany([item(1), item(2)]);
    worker.start();
    await flush();
    releases[0]!();
    await flush();
    await advance(fake, 50);
    expect(worker.stats()).toMatchObject({ completed: 1, errors: 1 });
    expect(events.find((e) => e.type === "error")).toMatchObject({ operation: "complete", retryInMs: 50 });

    failures = Number.POSITIVE_INFINITY;
    await advance(fake, 100);
    releases[1]!();
    await flush();
    await advance(fake, 3_000, 10);
    expect(worker.stats()).toMatchObject({ completed: 1, fenced: 1 });
    expect(events.filter((e) => e.type === "fenced").at(-1)).toMatchObject({
      error: { code: ErrorCodes.resourceLease.leaseExpiredLocally },
    });
    expect(client.calls.completes.length).toBeGreaterThan(3);
  });
});

describe("close (fake clock)", () => {
  it("aborts and requeues a handler exactly when graceMs runs out, and leaves no timer behind", async () => {
    const { fake, clock, queue, worker, contexts, client } = setup();
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    let closed = false;
    const closing = worker.close({ graceMs: 500 }).then(() => {
      closed = true;
    });
    await flush();
    await advance(fake, 495);
    expect(contexts[0]?.signal.aborted).toBe(false);
    expect(client.calls.heartbeats).toHaveLength(0); // the lease lasts 3 s; renewals are not due yet
    await advance(fake, 5);
    await closing;
    expect(closed).toBe(true);
    expect(contexts[0]?.signal.reason).toMatchObject({ code: ErrorCodes.worker.shuttingDown });
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
    expect(worker.state).toBe("stopped");
    expect(clock.live).toBe(0);
  });

  it("keeps renewing leases during the grace period", async () => {
    const { fake, queue, worker, contexts, client, releases } = setup();
    await queue.enqueue(item(1));
    worker.start();
    await flush();
    const closing = worker.close({ graceMs: 10_000 });
    await flush();
    await advance(fake, 2_500);
    expect(client.calls.heartbeats).toHaveLength(2);
    releases[0]!();
    await flush();
    await closing;
    expect(contexts[0]?.signal.aborted).toBe(false);
    expect(worker.stats()).toMatchObject({ completed: 1, failed: 0 });
  });
});
