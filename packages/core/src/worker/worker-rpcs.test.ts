import { describe, expect, it } from "vitest";
import { ResourceLeaseQueue } from "../queue/queue.js";
import { FakeClock } from "../testing/fake-clock.js";
import { advance, countingClock, deferred, flush, item, queueClient, spyClient } from "./test-helpers.js";
import { httpHarness } from "./test-http-harness.js";
import { ResourceLeaseWorker } from "./worker.js";

// What the worker costs per item, counted rather than timed: RPCs per item on a real HTTP dispatcher, timers per run.

/** Enqueues `n` items in calls of at most 500. */
async function fill(client: { enqueueMany(p: ReturnType<typeof item>[]): Promise<unknown> }, n: number) {
  for (let from = 0; from < n; from += 500) {
    await client.enqueueMany(Array.from({ length: Math.min(500, n - from) }, (_, i) => item(from + i)));
  }
}

describe("ResourceLeaseWorker RPCs per item (real HTTP dispatcher)", () => {
  const { setup, worker } = httpHarness();

  it("at concurrency 10 with prefetch 100, one lease and one completion call per 110 items", async () => {
    const stack = await setup({ leaseDurationMs: 30_000, capacity: 2_000 });
    const n = 1100;
    await fill(stack.client(), n);
    const client = spyClient(stack.client());
    const w = worker({
      client,
      peerId: "rpc-c10",
      concurrency: 10,
      prefetch: 100,
      leaseWaitMs: 200,
      handler: () => {},
    });
    w.start();
    await expect.poll(() => w.stats().completed, { timeout: 10_000 }).toBe(n);

    // Every item completed once, none failed or lost.
    const completed = client.calls.completes.flat().map((t) => t.sequenceId);
    expect(new Set(completed).size).toBe(n);
    expect(completed).toHaveLength(n);
    expect(w.stats()).toMatchObject({ completed: n, failed: 0, fenced: 0, errors: 0 });
    // The handlers of one lease settle in one turn: the slots they free are refilled by one lease call, and their
    // completions go in one completeMany (not a lease per freed slot, nor 100 + the rest).
    const granting = client.calls.leases.filter((l) => l.granted > 0);
    expect(granting).toHaveLength(n / 110);
    expect(granting.every((l) => l.maxItems === 110 && l.granted === 110)).toBe(true);
    expect(client.calls.completes).toHaveLength(n / 110);
    // At most one more (empty, long-polling) lease call in flight at the end.
    expect(client.calls.leases.length).toBeLessThanOrEqual(n / 110 + 1);
    expect(client.calls.heartbeats).toHaveLength(0);
  });

  it("with handlers that settle one by one, refills only once half the prefetch has been started", async () => {
    const stack = await setup({ leaseDurationMs: 30_000, capacity: 2_000 });
    const n = 600;
    await fill(stack.client(), n);
    const client = spyClient(stack.client());
    // Each handler takes its own timer turn, so slots free up one turn at a time.
    const handler = () => new Promise<void>((resolve) => setTimeout(resolve, 1));
    const w = worker({ client, peerId: "rpc-slow", concurrency: 10, prefetch: 100, leaseWaitMs: 200, handler });
    w.start();
    await expect.poll(() => w.stats().completed, { timeout: 20_000 }).toBe(n);

    // Never a lease call for a few freed slots: each asks for at least half the prefetch.
    expect(client.calls.leases.every((l) => (l.maxItems ?? 1) >= 50 && (l.maxItems ?? 1) <= 110)).toBe(true);
    expect(client.calls.leases.filter((l) => l.granted > 0).length).toBeLessThanOrEqual(Math.ceil(n / 50) + 1);
    expect(new Set(client.calls.completes.flat().map((t) => t.sequenceId)).size).toBe(n);
  });
});

describe("ResourceLeaseWorker timers per run (fake clock)", () => {
  it("holds one timer per leased item while handlers run (renewal and deadline share it), none once settled", async () => {
    const fake = new FakeClock();
    const clock = countingClock(fake);
    const queue = new ResourceLeaseQueue({ clock: fake, leaseDurationMs: 3_000 });
    for (let i = 0; i < 8; i++) await queue.enqueue(item(i));
    const gate = deferred();
    const renewed: number[] = [];
    const inner = queueClient(queue);
    const client = spyClient(inner, {
      heartbeat: async (t) => {
        renewed.push(t.sequenceId);
        return inner.heartbeat(t);
      },
    });
    const w = new ResourceLeaseWorker({
      client,
      clock,
      peerId: "timers",
      concurrency: 4,
      prefetch: 4,
      leaseWaitMs: 1_000,
      handler: () => gate.promise,
    }).start();
    await flush();
    expect(w.stats().inFlight).toBe(8);
    // 8 runs (4 running, 4 held) hold 8 timers; the loop, with no free slot, holds none.
    expect(clock.live).toBe(8);
    // The shared timer still renews at the heartbeat fraction and re-arms for the next one.
    for (let i = 0; i < 20; i++) {
      fake.advance(100);
      await flush();
    }
    expect(new Set(renewed).size).toBe(8);
    expect(clock.live).toBe(8);
    expect(w.stats().fenced).toBe(0);
    gate.resolve();
    await expect.poll(() => w.stats().completed).toBe(8);
    let closed = false;
    const closing = w.close({ graceMs: 0 }).finally(() => {
      closed = true;
    });
    for (let i = 0; i < 200 && !closed; i++) await advance(fake, 10);
    await closing;
    expect(clock.live).toBe(0);
  });
});
