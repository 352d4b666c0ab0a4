import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue } from "../src/index.js";
import { item, rejection, tempDb } from "./helpers.js";

// Findings 1 and 2 of the hardening issue against the real SQLite log: a value the API accepted must never fault a
// publish or make the next start refuse the log.

describe("what the queue accepts, the SQLite log stores and replays", () => {
  it("a restore near 2^53 is refused; later enqueues commit and the log reopens", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path });
    const refused = await rejection(
      first.queue.restore([{ payload: item("evil"), sequenceId: Number.MAX_SAFE_INTEGER, attempt: 1 }]),
    );
    expect(refused).toMatchObject({
      code: "resourcelease.argument.invalid",
      metadata: { field: "items[0].sequenceId" },
    });
    for (let i = 0; i < 3; i++) await first.queue.enqueue(item(`ok-${i}`));
    expect(first.queue.stats()).toMatchObject({ pendingCount: 3, state: "running" });
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path });
    expect(second.queue.stats()).toMatchObject({ pendingCount: 3, lastEventSequence: 3, state: "running" });
  });

  it("an enqueuedAt outside the Date range is refused before the log sees it; the queue is not faulted", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path });
    const refused = await rejection(
      first.queue.restore([{ payload: item("t"), sequenceId: 1, attempt: 1, enqueuedAt: 8_700_000_000_000_000 }]),
    );
    expect(refused.code).toBe("resourcelease.argument.invalid");
    await first.queue.enqueue(item("after"));
    expect(first.queue.stats().state).toBe("running");
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path });
    expect(second.queue.snapshot().pending.map((p) => p.payload.resourceId)).toEqual(["after"]);
  });

  it("the extremes of notBefore, delayMs and priority are stored and replayed; one past them faults nothing", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path });
    const extremes = [
      item("latest", { notBefore: 253_402_300_799_999, priority: 2 ** 31 - 1 }),
      item("longest", { delayMs: 36_525 * 86_400_000, priority: -(2 ** 31) }),
      item("epoch", { notBefore: 0, priority: 0 }),
    ];
    await first.queue.enqueueMany(extremes);
    for (const extra of [{ notBefore: 253_402_300_800_000 }, { priority: 2 ** 31 }, { priority: Number.NaN }]) {
      expect((await rejection(first.queue.enqueue(item("past", extra)))).code).toBe("resourcelease.payload.invalid");
    }
    const restored = await rejection(
      first.queue.restore([{ payload: { ...item("r"), priority: -(2 ** 31) - 1 }, sequenceId: 99 }]),
    );
    expect(restored.code).toBe("resourcelease.payload.invalid");
    const live = first.queue.snapshot();
    expect(first.queue.stats()).toMatchObject({ state: "running", pendingCount: 3, delayedCount: 2 });
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path });
    expect(second.queue.snapshot()).toEqual(live);
  });

  it("a drain of a queue too large for one event is several events, and the log reopens draining", async () => {
    const path = tempDb();
    const body = new Uint8Array(64 * 1024);
    const first = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1000 } });
    // 100 items of 64 KiB: 6.4 MiB of payload, more than one DrainSnapshot event may hold.
    for (let i = 0; i < 10; i++) {
      await first.queue.enqueueMany(Array.from({ length: 10 }, (_, j) => item(`${i}-${j}`, { body })));
    }
    const drained = await first.queue.drain();
    expect(drained).toHaveLength(100);
    await first.close();
    await using second = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1000 } });
    expect(second.queue.stats()).toMatchObject({ pendingCount: 0, state: "draining" });
    // Its own drained items come back with their ids, after the restart too.
    const back = await second.queue.restoreItems(drained);
    expect(back.sequenceIds).toEqual(drained.map((d) => d.sequenceId));
    expect(second.queue.stats()).toMatchObject({ pendingCount: 100, state: "running" });
  });
});
