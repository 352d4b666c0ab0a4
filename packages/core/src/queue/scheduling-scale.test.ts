import { describe, expect, it } from "vitest";
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { FakeClock } from "../testing/fake-clock.js";
import { ResourceLeaseQueue, type ResourceLeaseQueueOptions } from "./index.js";
import { queueEngine } from "./queue.js";

// Complexity is asserted on heap comparisons (the pending set's and the timer heap's), not wall time: a linear scan
// over a million delayed items would cost a million comparisons per lease; a heap costs about log2(n) = 20.

const BATCH = 10_000;

async function fill(queue: ResourceLeaseQueue, count: number, make: (i: number) => ResourceLeaseItemPayload) {
  for (let n = 0; n < count; n += BATCH) {
    const size = Math.min(BATCH, count - n);
    await queue.enqueueMany(Array.from({ length: size }, (_, i) => make(n + i)));
  }
}

function comparisons(queue: ResourceLeaseQueue): number {
  const { state } = queueEngine(queue);
  return state.pending.comparisons + state.schedule.comparisons + state.delayed.comparisons;
}

const base = (id: number, extra: Partial<ResourceLeaseItemPayload> = {}): ResourceLeaseItemPayload => ({
  resourceType: "t",
  resourceId: String(id),
  partitionKey: "p",
  payloadEncoding: "json",
  ...extra,
});

/** Comparisons spent leasing and completing `rounds` items one at a time. */
async function leaseCost(queue: ResourceLeaseQueue, rounds: number): Promise<number> {
  const before = comparisons(queue);
  for (let i = 0; i < rounds; i++) {
    const [grant] = await queue.lease();
    expect(grant).toBeDefined();
    await queue.complete(grant!.ownershipToken);
  }
  return comparisons(queue) - before;
}

function newQueue(clock: FakeClock, extra: ResourceLeaseQueueOptions = {}): ResourceLeaseQueue {
  return new ResourceLeaseQueue({ clock, capacity: 2_000_000, maxBatchSize: BATCH, ...extra });
}

describe("a million delayed items", () => {
  it("do not slow leasing of due ones: per lease O(log n) comparisons, nothing proportional to n", {
    timeout: 180_000,
  }, async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const rounds = 1_000;

    const empty = newQueue(clock);
    await fill(empty, rounds, (i) => base(i, { priority: i % 7 }));
    const without = await leaseCost(empty, rounds);
    await empty.close();

    const loaded = newQueue(clock);
    const n = 1_000_000;
    // Due times spread over the next day, in random-ish order (so the heap is not fed sorted input).
    await fill(loaded, n, (i) => base(i, { notBefore: t0 + 86_400_000 + ((i * 7919) % n) }));
    await fill(loaded, rounds, (i) => base(n + i, { priority: i % 7 }));
    expect(loaded.stats()).toMatchObject({ pendingCount: n + rounds, delayedCount: n });
    const withDelayed = await leaseCost(loaded, rounds);
    // Exactly the same work: delayed items wait in a heap of their own, which a grant or a completion never touches.
    expect(withDelayed).toBe(without);
    const log2n = Math.log2(n);

    // 1,000 of the delayed items come due: each costs one pop from the timer heap (O(log n)) and a pending push.
    clock.set(t0 + 86_400_000 + 999);
    const dueCost = await leaseCost(loaded, rounds);
    expect(dueCost / rounds).toBeLessThanOrEqual(6 * log2n);
    expect(await loaded.lease()).toEqual([]);
    expect(loaded.stats()).toMatchObject({ pendingCount: n - rounds, delayedCount: n - rounds });
    await loaded.close();
  });
});

describe("fair sharing at scale", () => {
  it("a tenant with 1,000,000 pending does not starve one with ten: all ten within the first 20 grants", {
    timeout: 180_000,
  }, async () => {
    const clock = new FakeClock();
    const queue = newQueue(clock, { keys: { by: { attribute: "tenant" }, fair: true } });
    const n = 1_000_000;
    await fill(queue, n, (i) => base(i, { attributes: { tenant: "A" } }));
    await queue.lease({ maxItems: 100 }); // A has been served for a while
    await fill(queue, 10, (i) => base(n + i, { attributes: { tenant: "B" } }));
    const before = comparisons(queue);
    const grants = await queue.lease({ maxItems: 20 });
    const spent = comparisons(queue) - before;
    expect(grants.filter((g) => g.payload.attributes?.tenant === "B")).toHaveLength(10);
    // O(log n + log k) per grant: the item heap of A (20 levels) and a heap of two keys.
    expect(spent / 20).toBeLessThanOrEqual(4 * Math.log2(n));
    await queue.close();
  });
});
