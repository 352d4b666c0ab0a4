import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IdTable } from "./id-table.js";

type Op =
  | { kind: "set"; id: number }
  | { kind: "delete"; id: number }
  | { kind: "run" | "drop"; from: number; n: number };

/** Ids as a queue hands them out and gets them back: runs of consecutive ids, reused low ids, ids near 2^53. */
const id = fc.oneof(
  fc.integer({ min: 1, max: 1_000 }),
  fc.integer({ min: Number.MAX_SAFE_INTEGER - 600, max: Number.MAX_SAFE_INTEGER }),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("set" as const), id }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("delete" as const), id }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom("run" as const, "drop" as const),
      from: id,
      n: fc.integer({ min: 1, max: 600 }),
    }),
  },
);

const pagesOf = (table: IdTable<unknown>) => (table as unknown as { pages: Map<number, unknown> }).pages.size;

describe("IdTable", () => {
  it("answers get, has, size, delete and values exactly as a Map does, whatever the ids and their order", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const table = new IdTable<{ id: number; v: number }>();
        const model = new Map<number, { id: number; v: number }>();
        let v = 0;
        const touched = new Set<number>();
        for (const o of ops) {
          const ids =
            "id" in o ? [o.id] : Array.from({ length: o.n }, (_, i) => o.from + i).filter(Number.isSafeInteger);
          for (const i of ids) {
            touched.add(i);
            if (o.kind === "delete" || o.kind === "drop") expect(table.delete(i)).toBe(model.delete(i));
            else {
              const value = { id: i, v: v++ };
              table.set(i, value);
              model.set(i, value);
            }
          }
          expect(table.size).toBe(model.size);
        }
        for (const i of touched) {
          expect(table.get(i)).toBe(model.get(i));
          expect(table.has(i)).toBe(model.has(i));
        }
        const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
        expect([...table.values()].sort(byId)).toEqual([...model.values()].sort(byId));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps finding a retired page's stragglers after an id of that page is set again", () => {
    const table = new IdTable<number>();
    for (let i = 1; i <= 600; i++) table.set(i, i); // pages 0, 1 and 2
    for (let i = 1; i <= 250; i++) table.delete(i); // page 0 keeps 251-255: retired, they move to the overflow
    table.set(3, 3); // page 0 is not made again: 3 joins them
    expect([3, 251, 252, 253, 254, 255].map((i) => table.get(i))).toEqual([3, 251, 252, 253, 254, 255]);
    expect(table.size).toBe(351);
  });

  it("lets go of old pages where only stragglers are left (an item delayed among thousands done)", () => {
    const table = new IdTable<number>();
    for (let i = 1; i <= 256_000; i++) table.set(i, i);
    expect(pagesOf(table)).toBe(1001); // ids 1-255 in page 0, 256,000 alone in page 1,000
    // Every 100th stays (two or three per page of 256): the old pages go, their values move to the overflow map.
    for (let i = 1; i <= 256_000; i++) if (i % 100 !== 0) table.delete(i);
    expect(table.size).toBe(2560);
    expect(pagesOf(table)).toBeLessThanOrEqual(1);
    for (let i = 100; i <= 256_000; i += 100) expect(table.get(i)).toBe(i);
    expect(table.get(101)).toBeUndefined();
    // New ids after the stragglers fill pages again; a reused id below them goes to the overflow map.
    for (let i = 256_001; i <= 257_024; i++) table.set(i, i);
    table.set(150, 150);
    expect(pagesOf(table)).toBeGreaterThanOrEqual(4);
    expect(table.get(150)).toBe(150);
    expect(table.size).toBe(2560 + 1024 + 1);
  });
});
