import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SqliteDeterministicStateStore } from "../src/index.js";
import { built, here } from "./drill-helpers.js";
import { rejection, tempDb } from "./helpers.js";

const run = promisify(execFile);
const rec = (kind: string, version = 1, text = "x") => ({
  kind,
  version,
  payload: new TextEncoder().encode(text),
  recordedAt: 1_700_000_000_123,
});

describe("SqliteDeterministicStateStore", () => {
  it("get/set/tryAdd: insert-if-absent, upsert, exact round trip", async () => {
    await using store = await SqliteDeterministicStateStore.open({ path: tempDb("state.db") });
    expect(await store.get("k")).toBeUndefined();
    expect(await store.tryAdd("k", rec("a", 1, "first"))).toBe(true);
    expect(await store.tryAdd("k", rec("b", 2, "second"))).toBe(false);
    expect(await store.get("k")).toEqual(rec("a", 1, "first"));
    await store.set("k", rec("c", 3, "third"));
    expect(await store.get("k")).toEqual(rec("c", 3, "third"));
    expect(await store.get("K")).toBeUndefined();
    expect(store.count()).toBe(1);
    expect((await rejection(store.tryAdd(" ", rec("a")))).code).toBe("resourcelease.deterministic.key_required");
    expect((await rejection(store.set("k", rec("")))).code).toBe("resourcelease.deterministic.record_invalid");
  });

  it("validates the table name and keeps data across reopen", async () => {
    const path = tempDb("state.db");
    const err = await rejection(SqliteDeterministicStateStore.open({ path, table: "t; DROP TABLE x" }));
    expect(err.metadata.option).toBe("table");
    const a = await SqliteDeterministicStateStore.open({ path, table: "effects" });
    await a.set("k", rec("a"));
    await a.close();
    expect((await rejection(a.get("k"))).code).toBe("resourcelease.sqlite.closed");
    await using b = await SqliteDeterministicStateStore.open({ path, table: "effects" });
    expect((await b.get("k"))?.kind).toBe("a");
  });

  it("two connections on one file: exactly one tryAdd per key wins", async () => {
    const path = tempDb("state.db");
    await using a = await SqliteDeterministicStateStore.open({ path });
    await using b = await SqliteDeterministicStateStore.open({ path });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => [a.tryAdd(`k${i}`, rec("a")), b.tryAdd(`k${i}`, rec("b"))]).flat(),
    );
    expect(results.filter(Boolean)).toHaveLength(50);
    for (let i = 0; i < 50; i++) expect(results[2 * i] !== results[2 * i + 1]).toBe(true);
    expect((await b.get("k0"))?.kind).toBe("a");
  });

  it("three processes racing tryAdd on one file: every key is won exactly once", async () => {
    expect(existsSync(built), "build the package first (pnpm build)").toBe(true);
    const path = tempDb("state.db");
    const script = join(here, "fixtures", "try-add.mjs");
    const outs = await Promise.all(
      ["p1", "p2", "p3"].map((name) => run(process.execPath, [script, path, "300", name])),
    );
    const won = outs.map((o) => JSON.parse(o.stdout) as number[]);
    const all = won.flat().sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await using store = await SqliteDeterministicStateStore.open({ path });
    const winnerOf7 = new TextDecoder().decode((await store.get("key-7"))?.payload);
    expect(won[["p1", "p2", "p3"].indexOf(winnerOf7)]).toContain(7);
  });
});
