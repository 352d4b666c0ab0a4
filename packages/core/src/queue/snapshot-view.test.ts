import { describe, expect, it } from "vitest";
import { ResourceLeaseQueue } from "./queue.js";
import type { ResourceLeaseQueueSnapshot } from "./snapshot.js";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotList } from "./snapshot-view.js";
import { fixture, item } from "./test-helpers.js";

const options = { maxAttempts: 2, leaseDurationMs: 5_000, retryBackoff: { initialDelayMs: 1_000, jitter: 0 } };

const all = <T>(list: ResourceLeaseSnapshotList<T>): T[] => Array.from({ length: list.length }, (_, i) => list.at(i)!);

/** The view read out whole: what a log that writes it entry by entry stores. */
function readOut(view: ResourceLeaseQueueSnapshotView): ResourceLeaseQueueSnapshot {
  return { ...view, pending: all(view.pending), delayed: all(view.delayed), deadLetters: all(view.deadLetters) };
}

/**
 * A queue holding every kind of item: pending (some with bodies, priorities, a request id, and one back from a retry
 * with its last error and token), delayed in a retry backoff, active, and dead-lettered for both reasons.
 */
async function mixedQueue() {
  const f = fixture(options);
  for (let i = 0; i < 24; i++) {
    await f.queue.enqueue(
      item(i, {
        ...(i % 2 === 0 ? { body: new Uint8Array([i, i + 1, i + 2]) } : {}),
        ...(i % 5 === 0 ? { priority: 1 } : {}),
        ...(i === 7 ? { requestId: "req-7" } : {}),
      }),
    );
  }
  const first = await f.queue.lease({ maxItems: 6, peerId: "w1" });
  await f.queue.fail(first[0]!.ownershipToken, { reason: "retry me", errorCode: "app.retry" }); // delayed
  await f.queue.fail(first[1]!.ownershipToken, { reason: "bad", errorCode: "app.bad", requeue: false }); // dead
  await f.queue.complete(first[2]!.ownershipToken);
  f.clock.advance(1_000); // the first retry is due
  const again = await f.queue.lease({ maxItems: 1, peerId: "w2" }); // it comes back at attempt 2
  expect(again[0]?.sequenceId).toBe(first[0]!.sequenceId);
  await f.queue.fail(again[0]!.ownershipToken, { reason: "twice", errorCode: "app.retry" }); // max_attempts: dead
  await f.queue.fail(first[3]!.ownershipToken, { reason: "later", errorCode: "app.retry" }); // delayed, due later
  f.clock.advance(1_000);
  return { ...f, held: [first[4]!, first[5]!] };
}

describe("ResourceLeaseQueue.snapshotView", () => {
  it("reads out to exactly the snapshot of the same moment, every kind of item and field", async () => {
    const f = await mixedQueue();
    const view = f.queue.snapshotView();
    const whole = f.queue.snapshot();
    expect(whole.pending.length).toBeGreaterThan(10);
    expect(whole.deadLetters.map((d) => d.reason).sort()).toEqual(["failed", "max_attempts"]);
    expect(whole.active).toHaveLength(2);
    const retried = [...whole.pending, ...whole.delayed].filter((p) => p.lastError !== undefined);
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.every((p) => p.lastOwnershipToken !== undefined)).toBe(true);
    expect(readOut(view)).toEqual(whole);
    expect(view.pending.at(view.pending.length)).toBeUndefined();
    expect(view.deadLetters.at(-1)).toBeUndefined();
  });

  it("keeps the moment it was taken while the queue goes on (leases, failures, redrives, completions, new items)", async () => {
    const f = await mixedQueue();
    const view = f.queue.snapshotView();
    const then = structuredClone(f.queue.snapshot());
    // Everything that changes an item record after the capture.
    const grants = await f.queue.lease({ maxItems: 100, peerId: "w3" });
    for (const [i, g] of grants.entries()) {
      if (i % 3 === 0) await f.queue.complete(g.ownershipToken);
      else if (i % 3 === 1) await f.queue.fail(g.ownershipToken, { reason: "after", errorCode: "app.after" });
      else await f.queue.fail(g.ownershipToken, { reason: "dead", errorCode: "app.dead", requeue: false });
    }
    for (const h of f.held) await f.queue.complete(h.ownershipToken);
    await f.queue.redrive({ sequenceIds: then.deadLetters.map((d) => d.sequenceId) });
    for (let i = 100; i < 110; i++) await f.queue.enqueue(item(i, { body: new Uint8Array(64).fill(i) }));
    expect(f.queue.snapshot()).not.toEqual(then);
    expect(readOut(view)).toEqual(then);
  });

  it("rebuilds, read out, the same queue as the whole snapshot", async () => {
    const f = await mixedQueue();
    const rebuilt = await ResourceLeaseQueue.rebuild([], options, {
      snapshot: structuredClone(readOut(f.queue.snapshotView())),
      activeLeases: "keep",
    });
    expect(rebuilt.snapshot()).toEqual(f.queue.snapshot());
    await rebuilt.close();
  });
});
