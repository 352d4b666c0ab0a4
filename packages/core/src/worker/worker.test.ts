import { describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { deferred, item, nextEvent, spyClient } from "./test-helpers.js";
import { count, httpHarness, isType } from "./test-http-harness.js";

describe("ResourceLeaseWorker over HTTP", () => {
  const { setup, worker } = httpHarness();

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
});
