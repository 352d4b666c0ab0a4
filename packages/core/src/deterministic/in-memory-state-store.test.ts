import { describe, expect, it } from "vitest";
import type { DeterministicRecord } from "../contracts/stores.js";
import { InMemoryDeterministicStateStore } from "./in-memory-state-store.js";

const record = (kind = "omnirelay.effect", bytes = [1, 2, 3]): DeterministicRecord => ({
  kind,
  version: 1,
  payload: new Uint8Array(bytes),
  recordedAt: 1_000,
});

describe("InMemoryDeterministicStateStore", () => {
  it("inserts only when absent with tryAdd and overwrites with set", async () => {
    const store = new InMemoryDeterministicStateStore();
    expect(await store.get("k")).toBeUndefined();
    expect(await store.tryAdd("k", record("a"))).toBe(true);
    expect(await store.tryAdd("k", record("b"))).toBe(false);
    expect((await store.get("k"))?.kind).toBe("a");
    await store.set("k", record("c", [9]));
    expect(await store.get("k")).toEqual(record("c", [9]));
    expect(await store.get("K")).toBeUndefined();
    expect(store.size).toBe(1);
    expect(store.keys()).toEqual(["k"]);
  });

  it("stores and returns copies so callers cannot change stored bytes", async () => {
    const store = new InMemoryDeterministicStateStore();
    const input = record();
    await store.tryAdd("k", input);
    input.payload[0] = 99;
    const read = await store.get("k");
    expect([...(read?.payload ?? [])]).toEqual([1, 2, 3]);
    read!.payload[1] = 77;
    expect([...((await store.get("k"))?.payload ?? [])]).toEqual([1, 2, 3]);
  });

  it("rejects blank keys and malformed records", async () => {
    const store = new InMemoryDeterministicStateStore();
    for (const key of ["", "  "]) {
      await expect(store.get(key)).rejects.toMatchObject({
        status: "invalid-argument",
        code: "resourcelease.deterministic.key_required",
      });
      await expect(store.set(key, record())).rejects.toMatchObject({
        code: "resourcelease.deterministic.key_required",
      });
      await expect(store.tryAdd(key, record())).rejects.toMatchObject({
        code: "resourcelease.deterministic.key_required",
      });
    }
    await expect(store.tryAdd("k", record(" "))).rejects.toMatchObject({
      code: "resourcelease.deterministic.record_invalid",
      metadata: { field: "kind" },
    });
    await expect(store.set("k", { ...record(), version: 1.5 })).rejects.toMatchObject({
      metadata: { field: "version" },
    });
    expect(store.size).toBe(0);
  });
});
