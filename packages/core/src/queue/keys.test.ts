import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const tenant = (name: string, id: string | number, extra = {}) =>
  item(`${name}-${id}`, { attributes: { tenant: name }, ...extra });
const names = (grants: ReadonlyArray<{ payload: { resourceId: string } }>) => grants.map((g) => g.payload.resourceId);

describe("per-key concurrency", () => {
  it("holds at most maxActive leases per key; an ended lease frees a slot", async () => {
    const { queue } = fixture({ keys: { by: { attribute: "tenant" }, maxActive: 2, maxActiveByKey: { vip: 3 } } });
    await queue.enqueueMany([
      ...[1, 2, 3, 4].map((i) => tenant("a", i)),
      ...[1, 2, 3, 4].map((i) => tenant("vip", i)),
      item("none-1"),
      item("none-2"),
      item("none-3"),
    ]);
    const first = await queue.lease({ maxItems: 100 });
    expect(names(first).sort()).toEqual(["a-1", "a-2", "none-1", "none-2", "vip-1", "vip-2", "vip-3"]);
    expect(await queue.lease({ maxItems: 100 })).toEqual([]);
    await queue.complete(first.find((g) => g.payload.resourceId === "a-1")!.ownershipToken);
    expect(names(await queue.lease({ maxItems: 100 }))).toEqual(["a-3"]);
    // A failed (requeued) lease frees its slot too, and the item goes back behind its key's others.
    await queue.fail(first.find((g) => g.payload.resourceId === "vip-1")!.ownershipToken, { reason: "x" });
    expect(names(await queue.lease({ maxItems: 100 }))).toEqual(["vip-4"]);
  });

  it("generalises orderedPartitions: maxActive 1 by partitionKey keeps each partition in order", async () => {
    const { queue } = fixture({ keys: { by: "partitionKey", maxActive: 1 } });
    await queue.enqueueMany([
      item(1, { partitionKey: "x" }),
      item(2, { partitionKey: "x" }),
      item(3, { partitionKey: "y" }),
    ]);
    const grants = await queue.lease({ maxItems: 10 });
    expect(names(grants)).toEqual(["1", "3"]);
    await queue.complete(grants[0]!.ownershipToken);
    expect(names(await queue.lease({ maxItems: 10 }))).toEqual(["2"]);
  });

  it("refuses orderedPartitions with keys, and bad caps, rates and weights, naming the option", () => {
    const bad: Array<[object, string]> = [
      [{ orderedPartitions: true, keys: { by: "partitionKey" } }, "keys"],
      [{ keys: { by: { attribute: "" } } }, "keys.by.attribute"],
      [{ keys: { by: "nope" } }, "keys.by"],
      [{ keys: { by: "partitionKey", maxActive: 0 } }, "keys.maxActive"],
      [{ keys: { by: "partitionKey", maxActiveByKey: { a: 1.5 } } }, "keys.maxActiveByKey.a"],
      [{ keys: { by: "partitionKey", rate: { grants: 0, intervalMs: 10 } } }, "keys.rate.grants"],
      [{ keys: { by: "partitionKey", rate: { grants: 1 } } }, "keys.rate.intervalMs"],
      [{ keys: { by: "partitionKey", fair: true, weights: { a: 0 } } }, "keys.weights.a"],
      [{ keys: { by: "partitionKey", fair: true, weights: { a: Number.NaN } } }, "keys.weights.a"],
      [{ priorityAging: { msPerLevel: 0 } }, "priorityAging.msPerLevel"],
    ];
    for (const [options, option] of bad) {
      expect(() => new ResourceLeaseQueue(options as never)).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid, metadata: { option } }),
      );
    }
  });
});

describe("per-key rate", () => {
  it("grants at most `grants` per key per window and wakes a waiting lease when the window ends", async () => {
    const { queue, clock } = fixture({ keys: { by: { attribute: "tenant" }, rate: { grants: 2, intervalMs: 1_000 } } });
    await queue.enqueueMany([1, 2, 3, 4, 5].map((i) => tenant("a", i)).concat([tenant("b", 1)]));
    const now = await queue.lease({ maxItems: 10 });
    expect(names(now)).toEqual(["a-1", "a-2", "b-1"]);
    for (const g of now) await queue.complete(g.ownershipToken);
    clock.advance(999);
    expect(await queue.lease({ maxItems: 10 })).toEqual([]);
    const waiting = queue.lease({ maxItems: 10, waitMs: 5_000 });
    clock.advance(1);
    expect(names(await waiting)).toEqual(["a-3", "a-4"]);
  });
});

describe("fair sharing", () => {
  it("alternates keys with equal weights whatever their backlog, priority order within a key", async () => {
    const { queue } = fixture({ capacity: 10_000, keys: { by: { attribute: "tenant" }, fair: true } });
    await queue.enqueueMany(Array.from({ length: 500 }, (_, i) => tenant("big", i)));
    await queue.enqueueMany([tenant("small", 1), tenant("small", 2, { priority: 1 }), tenant("small", 3)]);
    const order = names(await queue.lease({ maxItems: 6 }));
    // Both keys start level, a tie goes to the better head item; after that each key gets every other grant.
    expect(order).toEqual(["small-2", "big-0", "big-1", "small-1", "big-2", "small-3"]);
  });

  it("gives a key of weight 3 three grants for each of a key of weight 1", async () => {
    const { queue } = fixture({
      capacity: 10_000,
      keys: { by: { attribute: "tenant" }, fair: true, weights: { w3: 3 } },
    });
    await queue.enqueueMany([
      ...Array.from({ length: 100 }, (_, i) => tenant("w1", i)),
      ...Array.from({ length: 100 }, (_, i) => tenant("w3", i)),
    ]);
    const first = names(await queue.lease({ maxItems: 40 }));
    expect(first.filter((n) => n.startsWith("w3-")).length).toBe(30);
  });

  it("does not let an idle key bank credit: a key that returns starts at the current virtual time", async () => {
    const { queue } = fixture({ capacity: 10_000, keys: { by: { attribute: "tenant" }, fair: true } });
    await queue.enqueueMany(Array.from({ length: 100 }, (_, i) => tenant("a", i)));
    await queue.lease({ maxItems: 50 }); // only a is served: b was idle
    await queue.enqueueMany(Array.from({ length: 10 }, (_, i) => tenant("b", i)));
    const next = names(await queue.lease({ maxItems: 10 }));
    // Alternating, not ten of b in a row to pay back fifty grants of a.
    expect(next.filter((n) => n.startsWith("b-")).length).toBe(5);
  });

  it("combines with a per-key cap: a capped key is skipped, not waited for", async () => {
    const { queue } = fixture({ keys: { by: { attribute: "tenant" }, fair: true, maxActive: 1 } });
    await queue.enqueueMany([tenant("a", 1), tenant("a", 2), tenant("b", 1), tenant("b", 2)]);
    expect(names(await queue.lease({ maxItems: 10 }))).toEqual(["a-1", "b-1"]);
  });

  it("answers a bad option with a coded error at construction, not at lease time", async () => {
    const err = await rejection(Promise.resolve().then(() => new ResourceLeaseQueue({ keys: { by: null as never } })));
    expect(err.code).toBe(ErrorCodes.resourceLease.optionsInvalid);
  });
});

describe("per-key dispatch state through a snapshot", () => {
  const restored = (queue: ResourceLeaseQueue, options: Parameters<typeof fixture>[0], clock: unknown) =>
    ResourceLeaseQueue.rebuild([], { ...options, clock } as never, {
      activeLeases: "keep",
      snapshot: structuredClone(queue.snapshot()),
    });

  it("keeps a key's rate window: a restored queue does not grant a blocked key before its window ends", async () => {
    const options = { keys: { by: { attribute: "tenant" }, rate: { grants: 2, intervalMs: 1_000 } } } as const;
    const { queue, clock } = fixture(options);
    await queue.enqueueMany([1, 2, 3, 4].map((i) => tenant("a", i)).concat([tenant("b", 1), tenant("b", 2)]));
    const t0 = clock.now();
    expect(names(await queue.lease({ maxItems: 3 }))).toEqual(["a-1", "a-2", "b-1"]);
    clock.advance(500);
    expect(queue.snapshot().dispatch?.keys).toEqual([
      ["a", 0, t0, 2, t0 + 1_000],
      ["b", 0, t0, 1, 0],
    ]);
    const copy = await restored(queue, options, clock);
    expect(copy.snapshot()).toEqual(queue.snapshot());
    // b has one grant left in its window; a waits until 1,000 ms after its window opened.
    expect(names(await copy.lease({ maxItems: 10 }))).toEqual(["b-2"]);
    clock.advance(499);
    expect(await copy.lease({ maxItems: 10 })).toEqual([]);
    clock.advance(1);
    expect(names(await copy.lease({ maxItems: 10 }))).toEqual(["a-3", "a-4"]);
  });

  it("keeps fair-sharing virtual times: a restored queue grants in the live queue's order", async () => {
    const options = {
      capacity: 10_000,
      keys: { by: { attribute: "tenant" }, fair: true, weights: { w3: 3 } },
    } as const;
    const { queue, clock } = fixture(options);
    await queue.enqueueMany([
      ...Array.from({ length: 50 }, (_, i) => tenant("w1", i)),
      ...Array.from({ length: 50 }, (_, i) => tenant("w3", i)),
    ]);
    await queue.lease({ maxItems: 7 });
    await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => tenant("late", i)));
    const copy = await restored(queue, options, clock);
    expect(copy.snapshot()).toEqual(queue.snapshot());
    expect(names(await copy.lease({ maxItems: 30 }))).toEqual(names(await queue.lease({ maxItems: 30 })));
  });
});
