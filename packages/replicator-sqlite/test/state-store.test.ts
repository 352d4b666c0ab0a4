import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator } from "@omnirelay/core/deterministic";
import { FakeClock } from "@omnirelay/core/testing";
import Database from "better-sqlite3";
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

// get/set/tryAdd semantics, round trips, keys, validation, reopen and a second connection racing tryAdd: core's
// deterministic-store conformance suite (conformance.test.ts). Here: what only this store has.
describe("SqliteDeterministicStateStore", () => {
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

describe("SqliteDeterministicStateStore retention", () => {
  const at = (kind: string, recordedAt: number, size = 10) => ({
    kind,
    version: 1,
    payload: new Uint8Array(size).fill(7),
    recordedAt,
  });

  it("maxAgeMs: the timer deletes effect and gate records older than the age, and nothing else", async () => {
    const clock = new FakeClock();
    const now = clock.now();
    await using store = await SqliteDeterministicStateStore.open({
      path: tempDb("state.db"),
      clock,
      retention: { maxAgeMs: 60_000, intervalMs: 10_000 },
    });
    await store.set("old-effect", at("omnirelay.effect", now - 120_000));
    await store.set("old-gate", at("omnirelay.version", now - 61_000));
    await store.set("old-app-state", at("catalog.table", now - 10_000_000));
    await store.set("new-effect", at("omnirelay.effect", now - 45_000));
    expect(store.count()).toBe(4);
    clock.advance(9_999);
    expect(store.count()).toBe(4);
    clock.advance(1);
    await expect.poll(() => store.count()).toBe(2);
    expect(await store.get("old-effect")).toBeUndefined();
    expect(await store.get("old-gate")).toBeUndefined();
    expect(await store.get("old-app-state")).toBeDefined();
    expect(await store.get("new-effect")).toBeDefined();
    // The job keeps running: one interval later the last effect is past the age too.
    clock.advance(10_000);
    await expect.poll(() => store.count()).toBe(1);
    expect(await store.get("old-app-state")).toBeDefined();
  });

  it("maxRecords keeps the newest selected records; keyPrefixes selects by key whatever the kind", async () => {
    const clock = new FakeClock();
    await using store = await SqliteDeterministicStateStore.open({
      path: tempDb("state.db"),
      clock,
      retention: { maxRecords: 3, keyPrefixes: ["claim/"], intervalMs: 3_600_000 },
    });
    for (let i = 0; i < 5; i++) await store.set(`fx/${i}`, at("omnirelay.effect", 1000 + i));
    for (let i = 0; i < 3; i++) await store.set(`claim/${i}`, at("app.claim", 2000 + i));
    await store.set("checkpoint", at("app.checkpoint", 0));
    expect(await store.prune()).toEqual({ deleted: 5, remaining: 4 });
    const kept = [];
    for (const key of ["fx/0", "fx/1", "fx/2", "fx/3", "fx/4", "claim/0", "claim/1", "claim/2", "checkpoint"]) {
      if (await store.get(key)) kept.push(key);
    }
    expect(kept).toEqual(["claim/0", "claim/1", "claim/2", "checkpoint"]);
    expect(await store.prune()).toEqual({ deleted: 0, remaining: 4 });
  });

  it("with a coordinator: old events' records go, recent ones still guard against a replay", async () => {
    const clock = new FakeClock();
    await using store = await SqliteDeterministicStateStore.open({
      path: tempDb("state.db"),
      clock,
      retention: { maxRecords: 200, intervalMs: 3_600_000 },
    });
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore: store, clock });
    const event = (n: number): ResourceLeaseReplicationEvent => ({
      sequenceNumber: n,
      eventType: "Heartbeat",
      timestamp: clock.now(),
      metadata: {},
    });
    for (let n = 1; n <= 1000; n++) {
      await coordinator.record(event(n));
      clock.advance(1);
    }
    expect(store.count()).toBe(2000);
    expect(await store.prune()).toEqual({ deleted: 1800, remaining: 200 });
    // The newest 100 events keep their gate and effect: a replay of them executes nothing.
    for (const n of [901, 950, 1000]) expect((await coordinator.record(event(n))).recorded).toBe(false);
    // An event older than the retention is no longer guarded (the documented trade): it records again.
    expect((await coordinator.record(event(5))).recorded).toBe(true);
  });

  it("runs once at open: a store reopened after a crash is pruned before use, not one interval later", async () => {
    const path = tempDb("state.db");
    const first = await SqliteDeterministicStateStore.open({ path });
    for (let i = 0; i < 50; i++) await first.set(`fx/${i}`, at("omnirelay.effect", 1000 + i));
    await first.close();
    // Restarted with retention (as a process in a crash loop is, again and again): the backlog goes at open.
    const clock = new FakeClock();
    await using reopened = await SqliteDeterministicStateStore.open({
      path,
      clock,
      retention: { maxRecords: 10, intervalMs: 3_600_000 },
    });
    expect(reopened.count()).toBe(10);
    expect(await reopened.get("fx/49")).toBeDefined();
    expect(await reopened.get("fx/39")).toBeUndefined();
  });

  it("keeps the file bounded: ten times the retained records written, the file stops growing", async () => {
    const write = async (store: SqliteDeterministicStateStore, round: number) => {
      for (let i = 0; i < 500; i++) await store.set(`fx/${round}/${i}`, at("omnirelay.effect", round * 1000 + i, 1000));
    };
    const boundedPath = tempDb("bounded.db");
    const unboundedPath = tempDb("unbounded.db");
    const bounded = await SqliteDeterministicStateStore.open({ path: boundedPath, retention: { maxRecords: 500 } });
    const unbounded = await SqliteDeterministicStateStore.open({ path: unboundedPath });
    const sizes: number[] = [];
    for (let round = 0; round < 10; round++) {
      await write(bounded, round);
      await write(unbounded, round);
      await bounded.prune();
      sizes.push(statSync(boundedPath).size + statSync(`${boundedPath}-wal`).size);
    }
    await bounded.close();
    await unbounded.close();
    // From the third round on the file reuses the pages the job freed: it does not grow any more.
    expect(sizes.at(-1)!).toBeLessThanOrEqual(1.05 * sizes[2]!);
    expect(statSync(unboundedPath).size).toBeGreaterThan(3 * statSync(boundedPath).size);
  });

  it("close() during a long run stops after the current batch", async () => {
    const path = tempDb("state.db");
    const store = await SqliteDeterministicStateStore.open({ path, retention: { maxRecords: 0 } });
    const db = new Database(path);
    const insert = db.prepare(
      "INSERT INTO omnirelay_deterministic_state (key, kind, version, recorded_at, payload) VALUES (?, 'omnirelay.effect', 1, ?, x'00')",
    );
    db.transaction(() => {
      for (let i = 0; i < 30_000; i++) insert.run(`k${i}`, i);
    })();
    db.close();
    const run = store.prune();
    await store.close();
    const result = await run;
    expect(result.deleted).toBeGreaterThan(0);
    expect(result.deleted).toBeLessThan(30_000);
    await using again = await SqliteDeterministicStateStore.open({ path });
    expect(again.count()).toBe(30_000 - result.deleted);
    expect(await again.prune()).toEqual({ deleted: 0, remaining: 30_000 - result.deleted });
  });

  it("migrates a version-1 store (adds the recorded_at index), keeping its records", async () => {
    const path = tempDb("state.db");
    const db = new Database(path);
    db.exec(
      `CREATE TABLE omnirelay_deterministic_state (key TEXT PRIMARY KEY, kind TEXT NOT NULL, version INTEGER NOT NULL, recorded_at INTEGER NOT NULL, payload BLOB NOT NULL) WITHOUT ROWID;
       CREATE TABLE omnirelay_schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at INTEGER NOT NULL);
       INSERT INTO omnirelay_schema_versions VALUES ('statestore:omnirelay_deterministic_state', 1, 0);
       INSERT INTO omnirelay_deterministic_state VALUES ('k', 'omnirelay.effect', 1, 5, x'01');`,
    );
    db.close();
    const kept = await SqliteDeterministicStateStore.open({ path });
    expect((await kept.get("k"))?.recordedAt).toBe(5);
    await kept.close();
    // With retention the migrated index serves the prune at open: the record is far older than 1 ms.
    const store = await SqliteDeterministicStateStore.open({ path, retention: { maxAgeMs: 1 } });
    expect(store.count()).toBe(0);
    expect(await store.prune()).toEqual({ deleted: 0, remaining: 0 });
    await store.close();
    const check = new Database(path, { readonly: true });
    expect(
      check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%recorded_at'").all(),
    ).toEqual([{ name: "omnirelay_deterministic_state_recorded_at" }]);
    check.close();
  });

  it.each([
    [{ maxAgeMs: 0 }, "retention.maxAgeMs"],
    [{ maxAgeMs: 1.5 }, "retention.maxAgeMs"],
    [{ maxRecords: -1 }, "retention.maxRecords"],
    [{}, "retention"],
    [{ maxRecords: 1, intervalMs: 0 }, "retention.intervalMs"],
    [{ maxRecords: 1, intervalMs: 2 ** 31 }, "retention.intervalMs"],
    [{ maxRecords: 1, kinds: [""] }, "retention.kinds"],
    [{ maxRecords: 1, kinds: [], keyPrefixes: [] }, "retention.kinds"],
    [{ maxRecords: 1, keyPrefixes: "x" }, "retention.keyPrefixes"],
  ])("rejects retention %j naming %s", async (retention, option) => {
    const err = await rejection(
      SqliteDeterministicStateStore.open({ path: tempDb("state.db"), retention: retention as never }),
    );
    expect(err).toMatchObject({ status: "invalid-argument", code: "resourcelease.options.invalid" });
    expect(err.metadata.option).toBe(option);
  });

  it("without a policy prune deletes nothing, and the settings in force are readable", async () => {
    await using plain = await SqliteDeterministicStateStore.open({ path: tempDb("a.db") });
    await plain.set("k", at("omnirelay.effect", 0));
    expect(await plain.prune()).toEqual({ deleted: 0, remaining: 1 });
    expect(plain.retention).toBeUndefined();
    await using kept = await SqliteDeterministicStateStore.open({ path: tempDb("b.db"), retention: { maxAgeMs: 5 } });
    expect(kept.retention).toEqual({
      maxAgeMs: 5,
      maxRecords: undefined,
      kinds: ["omnirelay.effect", "omnirelay.version"],
      keyPrefixes: [],
      intervalMs: 60_000,
    });
  });
});
