import { describe, expect, it } from "vitest";
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { FakeClock } from "../testing/fake-clock.js";
import { ResourceLeaseQueue } from "./queue.js";

/**
 * Lease cost must not grow with queue depth. Timing ratios are noisy, so the bound is loose: a linear scan over a
 * million items would be hundreds of times slower than over a thousand, far beyond the 10x allowed here.
 */
async function leaseCostMs(depth: number, ordered: boolean): Promise<number> {
  const queue = new ResourceLeaseQueue({
    clock: new FakeClock(),
    capacity: depth + 10_000,
    maxBatchSize: 10_000,
    orderedPartitions: ordered,
  });
  const batch: ResourceLeaseItemPayload[] = [];
  for (let i = 0; i < 10_000; i++) {
    // With ordered partitions, 1,000 busy partitions sit at the head of the queue: a scan would walk all of them.
    batch.push({ resourceType: "t", resourceId: String(i), partitionKey: `p${i % 1000}`, payloadEncoding: "json" });
  }
  for (let n = 0; n < depth; n += 10_000) await queue.enqueueMany(batch.slice(0, Math.min(10_000, depth - n)));
  expect(queue.stats().pendingCount).toBe(depth);
  if (ordered) await queue.lease({ maxItems: 1000 }); // one active lease in every partition
  const started = performance.now();
  const rounds = 1000;
  for (let i = 0; i < rounds; i++) {
    const grants = await queue.lease();
    if (ordered) {
      expect(grants).toHaveLength(0);
    } else {
      await queue.complete(grants[0]!.ownershipToken);
    }
  }
  const elapsed = performance.now() - started;
  await queue.close();
  return elapsed;
}

describe("lease cost does not grow with depth", () => {
  it("leases from 1,000,000 pending items about as fast as from 1,000", { timeout: 120_000 }, async () => {
    await leaseCostMs(1000, false); // warm up the JIT
    const small = await leaseCostMs(1000, false);
    const large = await leaseCostMs(1_000_000, false);
    expect(large).toBeLessThan(Math.max(small, 5) * 10);
  });

  it("with ordered partitions, finding no leaseable item is O(1) however many items wait", {
    timeout: 120_000,
  }, async () => {
    await leaseCostMs(10_000, true);
    const small = await leaseCostMs(10_000, true);
    const large = await leaseCostMs(1_000_000, true);
    expect(large).toBeLessThan(Math.max(small, 5) * 10);
  });
});
