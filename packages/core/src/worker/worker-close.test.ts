import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { deferred, item, spyClient } from "./test-helpers.js";
import { httpHarness } from "./test-http-harness.js";

describe("ResourceLeaseWorker over HTTP: closing", () => {
  const { setup, worker } = httpHarness();

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
    // …and the worker has them (granted is not yet received: grants that reach a closing worker go straight back).
    await expect.poll(() => w.stats().inFlight).toBe(4);
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
