import { describe, expect, it } from "vitest";
import { PendingItems } from "./pending.js";
import { newItemRecord } from "./records.js";
import { item } from "./test-helpers.js";

// The pending set's memory of keys under a per-key rate: a key that holds nothing is forgotten once its window is
// over, so one-off keys (a tenant per request) do not accumulate.

const rules = { keyOf: (p: { resourceId: string }) => p.resourceId, rate: { grants: 5, intervalMs: 1_000 } };

/** One item of key `key` through the set: added, leased at `at`, its lease ended. */
function oneOff(pending: PendingItems, key: string, at: number): void {
  const record = newItemRecord({ payload: item(key), sequenceId: 1, attempt: 1, enqueuedAt: at });
  pending.push(record);
  expect(pending.peekLeaseable(at)).toBe(record);
  pending.remove(record);
  pending.leaseStarted(record, at);
  pending.leaseEnded(record);
}

describe("keys under a rate", () => {
  it("are forgotten once their window is over and they hold nothing, and only then", () => {
    const pending = new PendingItems(rules);
    for (let i = 0; i < 3_000; i++) oneOff(pending, `old-${i}`, 0);
    // Each was leased once of its five: its window (0–1,000 ms) still counts, so every key is kept, but a key that
    // holds nothing is not listed among the busiest.
    expect(pending.keyCount).toBe(3_000);
    expect(pending.busiest(100)).toEqual([]);
    for (let i = 0; i < 4_000; i++) oneOff(pending, `new-${i}`, 1_000);
    // The old windows ended at 1,000 ms: swept as the new keys came (their own windows still run).
    expect(pending.keyCount).toBeLessThan(4_000 + 1_100);
    expect(pending.keyCount).toBeGreaterThanOrEqual(4_000);
    // A snapshot leaves an ended window out, swept or not.
    expect(pending.exportDispatch()?.keys.some(([key]) => key.startsWith("old-"))).toBe(false);
  });

  it("a key with a window still running keeps its count through a sweep", () => {
    const pending = new PendingItems(rules);
    for (let n = 0; n < 5; n++) oneOff(pending, "busy", 0);
    for (let i = 0; i < 5_000; i++) oneOff(pending, `k-${i}`, 500);
    // busy used its five grants at 0: blocked until 1,000 ms, whatever sweeps ran at 500.
    const again = newItemRecord({ payload: item("busy"), sequenceId: 2, attempt: 1, enqueuedAt: 500 });
    pending.push(again);
    expect(pending.peekLeaseable(999)).toBeUndefined();
    expect(pending.peekLeaseable(1_000)).toBe(again);
  });
});
