import { ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue } from "../src/index.js";
import { decodeSnapshot, encodeSnapshot } from "../src/snapshot-codec.js";
import { emptySnapshot, item, tempDb } from "./helpers.js";

const tenant = (name: string, i: number) => item(`${name}-${i}`, { attributes: { tenant: name } });
const names = (grants: ReadonlyArray<{ payload: { resourceId: string } }>) => grants.map((g) => g.payload.resourceId);

describe("per-key dispatch state in SQLite snapshots", () => {
  const queueOptions = (clock: FakeClock) => ({
    clock,
    capacity: 10_000,
    keys: { by: { attribute: "tenant" }, rate: { grants: 3, intervalMs: 60_000 }, fair: true, weights: { big: 2 } },
  });

  it("a restart from a snapshot keeps rate windows and virtual times: the same grants in the same order", async () => {
    const path = tempDb();
    const clock = new FakeClock();
    const open = () => openDurableResourceLeaseQueue({ path, queueOptions: queueOptions(clock) });
    const first = await open();
    for (const name of ["big", "small", "other"]) {
      await first.queue.enqueueMany(Array.from({ length: 8 }, (_, i) => tenant(name, i)));
    }
    await first.queue.lease({ maxItems: 5 });
    clock.advance(1_000);
    await first.queue.enqueue(tenant("late", 0));
    await first.queue.enqueue(tenant("late", 1));
    const live = first.queue.snapshot();
    expect(live.dispatch?.keys.length).toBeGreaterThan(0);
    // Stored now (the queue's own amortised snapshots come later): it holds the blocked keys and the virtual times.
    expect(await first.replicator.saveSnapshotInSteps(live)).toBe(true);
    await first.close();

    const second = await open();
    expect(second.snapshotSequence).toBe(live.lastEventSequence); // restored from the snapshot, nothing replayed
    // The five leases held at the stop expire at the restart (the durable queue's rule); the dispatch state stays.
    expect(second.queue.snapshot().dispatch).toEqual(live.dispatch);
    // The same order as a queue restored in memory from the live snapshot (core proves that one equals the live queue),
    // and no key past its rate: each of big, small and other got 3 or fewer in the window.
    const reference = await ResourceLeaseQueue.rebuild([], queueOptions(clock), {
      activeLeases: "expire",
      snapshot: structuredClone(live),
    });
    expect(second.queue.snapshot()).toEqual(reference.snapshot());
    const expected = names(await reference.lease({ maxItems: 20 }));
    const granted = names(await second.queue.lease({ maxItems: 20 }));
    expect(granted).toEqual(expected);
    expect(granted).toContain("late-0");
    await reference.close();
    await second.close();
  });

  it("the codec round-trips the dispatch state, and a snapshot without it decodes without it", () => {
    const base = emptySnapshot(4);
    const dispatch = { vtime: 2.5, keys: [["a", 3, 1_767_225_600_000, 2, 1_767_225_660_000] as const] };
    const coded = encodeSnapshot({ ...base, dispatch });
    expect(decodeSnapshot(coded.head, coded.parts)).toEqual({ ...base, dispatch });
    const plain = encodeSnapshot(base);
    expect(decodeSnapshot(plain.head, plain.parts)).toEqual(base);
    // Keys without the head's virtual time are a damaged snapshot, not a silent default.
    expect(() => decodeSnapshot(plain.head, coded.parts)).toThrow();
  });
});
