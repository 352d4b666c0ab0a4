import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { busiestKeys, type KeyLoad } from "./key-stats.js";
import { fixture, item } from "./test-helpers.js";

const byTenant = { keys: { by: { attribute: "tenant" } } } as const;
const tenant = (name: string, id: string | number) => item(`${name}-${id}`, { attributes: { tenant: name } });
const many = (name: string, n: number) => Array.from({ length: n }, (_, i) => tenant(name, i));

describe("ResourceLeaseQueue.keyStats", () => {
  it("reports each key's active and pending, busiest first, with no caps configured", async () => {
    const { queue } = fixture({ ...byTenant, capacity: 100 });
    await queue.enqueueMany([...many("bulk", 9), ...many("mid", 4), ...many("small", 2)]);
    expect(queue.keyStats()).toEqual([
      { key: "bulk", active: 0, pending: 9 },
      { key: "mid", active: 0, pending: 4 },
      { key: "small", active: 0, pending: 2 },
    ]);
    // One global order without fair sharing: the first 10 grants are bulk's 9 and mid's first.
    const grants = await queue.lease({ maxItems: 10 });
    expect(queue.keyStats()).toEqual([
      { key: "bulk", active: 9, pending: 0 },
      { key: "mid", active: 1, pending: 3 },
      { key: "small", active: 0, pending: 2 },
    ]);
    for (const g of grants.slice(0, 6)) await queue.complete(g.ownershipToken);
    expect(queue.keyStats()).toEqual([
      { key: "mid", active: 1, pending: 3 },
      { key: "bulk", active: 3, pending: 0 },
      { key: "small", active: 0, pending: 2 },
    ]);
  });

  it("keeps a key with only active leases, and forgets a key once it has neither", async () => {
    const { queue } = fixture({ ...byTenant, capacity: 100 });
    await queue.enqueueMany([...many("a", 2), ...many("b", 3)]);
    const grants = await queue.lease({ maxItems: 2 });
    expect(grants.map((g) => g.payload.attributes?.tenant)).toEqual(["a", "a"]);
    expect(queue.keyStats()).toEqual([
      { key: "b", active: 0, pending: 3 },
      { key: "a", active: 2, pending: 0 },
    ]);
    // A drain takes b's pending items; a's leases stay until they end.
    expect(await queue.drain()).toHaveLength(3);
    expect(queue.keyStats()).toEqual([{ key: "a", active: 2, pending: 0 }]);
    await queue.complete(grants[0]!.ownershipToken);
    await queue.fail(grants[1]!.ownershipToken, { requeue: false });
    expect(queue.keyStats()).toEqual([]);
    expect(queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });

  it("counts a requeued item as pending again and a delayed one only when due", async () => {
    const { queue, clock } = fixture({ ...byTenant, retryBackoff: { initialDelayMs: 1_000 } });
    await queue.enqueue({ ...tenant("a", 1), delayMs: 500 });
    expect(queue.keyStats()).toEqual([]);
    clock.advance(500);
    expect(queue.keyStats()).toEqual([{ key: "a", active: 0, pending: 1 }]);
    const [grant] = await queue.lease();
    await queue.fail(grant!.ownershipToken, { reason: "retry" });
    expect(queue.keyStats()).toEqual([]); // waiting out its backoff
    clock.advance(1_000);
    expect(queue.keyStats()).toEqual([{ key: "a", active: 0, pending: 1 }]);
  });

  it("caps the rows at top (default 10, at most 100) and orders ties by key", async () => {
    const { queue } = fixture({ keys: { by: "partitionKey", fair: true }, capacity: 1_000 });
    const items = Array.from({ length: 150 }, (_, k) =>
      item(`i${k}`, { partitionKey: `k${String(k).padStart(3, "0")}` }),
    );
    await queue.enqueueMany([...items, item("x1", { partitionKey: "k149" }), item("x2", { partitionKey: "k149" })]);
    const ten = queue.keyStats();
    expect(ten).toHaveLength(10);
    expect(ten[0]).toEqual({ key: "k149", active: 0, pending: 3 });
    expect(ten.slice(1).map((r) => r.key)).toEqual([
      "k000",
      "k001",
      "k002",
      "k003",
      "k004",
      "k005",
      "k006",
      "k007",
      "k008",
    ]);
    expect(queue.keyStats({ top: 3 }).map((r) => r.key)).toEqual(["k149", "k000", "k001"]);
    expect(queue.keyStats({ top: 100 })).toHaveLength(100);
    for (const top of [0, 101, 1.5, "five", -1]) {
      expect(() => queue.keyStats({ top: top as number })).toThrow(
        expect.objectContaining({
          status: "invalid-argument",
          code: ErrorCodes.resourceLease.argumentInvalid,
          metadata: expect.objectContaining({ field: "top" }),
        }),
      );
    }
  });

  it("reports nothing for a queue without keys, and partitions under orderedPartitions", async () => {
    const plain = fixture();
    await plain.queue.enqueueMany([item(1), item(2)]);
    expect(plain.queue.keyStats()).toEqual([]);
    const ordered = fixture({ orderedPartitions: true });
    await ordered.queue.enqueueMany([item(1, { partitionKey: "x" }), item(2, { partitionKey: "x" })]);
    await ordered.queue.lease();
    expect(ordered.queue.keyStats()).toEqual([{ key: "x", active: 1, pending: 1 }]);
  });
});

describe("busiestKeys", () => {
  it("selects the same rows as a full sort among 100,000 keys", () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const keys: KeyLoad[] = Array.from({ length: 100_000 }, (_, i) => ({
      key: `t${i}`,
      active: Math.floor(rand() * 5),
      items: { size: Math.floor(rand() * rand() * 1_000) },
    }));
    const load = (k: KeyLoad) => k.active + k.items.size;
    const sorted = [...keys].sort((a, b) => load(b) - load(a) || (a.key < b.key ? -1 : 1));
    const expected = sorted.slice(0, 100).map((k) => ({ key: k.key, active: k.active, pending: k.items.size }));
    expect(busiestKeys(keys, 100)).toEqual(expected);
    expect(busiestKeys(keys, 1)).toEqual(expected.slice(0, 1));
    expect(busiestKeys([], 10)).toEqual([]);
  });
});
