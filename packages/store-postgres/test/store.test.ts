import { createServer } from "node:net";
import { ErrorCodes } from "@omnirelay/core";
import { DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND } from "@omnirelay/core/deterministic";
import { FakeClock } from "@omnirelay/core/testing";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { PostgresDeterministicStateStore, type PostgresDeterministicStateStoreOptions } from "../src/index.js";
import { dropRunSchema, freshTable, openStore, PG_URL, RUN_SCHEMA, record, rejection, withClient } from "./helpers.js";
import { startProxy } from "./proxy.js";

// Semantics, round trips, keys, validation and racing instances: conformance.test.ts and nodes.test.ts. Here: what
// only the PostgreSQL store has (its table, names, options, the pool it owns or borrows, failures of the server).
afterAll(async () => {
  await dropRunSchema();
});

const machine = { host: new URL(PG_URL).hostname, port: Number(new URL(PG_URL).port || 5432) };

const columnsOf = (schema: string, table: string) =>
  withClient(async (c) => {
    const result = await c.query<{ column_name: string; data_type: string; collation_name: string | null }>(
      `SELECT column_name, data_type, collation_name FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [schema, table],
    );
    return result.rows.map((r) => `${r.column_name} ${r.data_type}${r.collation_name ? ` ${r.collation_name}` : ""}`);
  });

describe("PostgresDeterministicStateStore", () => {
  it("creates its schema and table when absent, with any name, quoted: no name is read as SQL", async () => {
    const schema = `${RUN_SCHEMA} "quoted"`;
    const table = `effects"; DROP TABLE x; --`;
    try {
      const store = await PostgresDeterministicStateStore.open({ connectionString: PG_URL, schema, table });
      expect(store.qualifiedTable).toBe(`"${RUN_SCHEMA} ""quoted"""."effects""; DROP TABLE x; --"`);
      expect(await store.tryAdd("k", record("x"))).toBe(true);
      await store.close();
      expect(await columnsOf(schema, table)).toEqual([
        "key text C",
        "kind text",
        "version bigint",
        "recorded_at double precision",
        "payload bytea",
      ]);
      // Opened again: the table and its records are kept.
      const again = await PostgresDeterministicStateStore.open({ connectionString: PG_URL, schema, table });
      expect(await again.get("k")).toEqual(record("x"));
      await again.close();
    } finally {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema.replaceAll('"', '""')}" CASCADE`));
    }
  });

  it("nodes opening a new table, or new tables in a new schema, at the same moment all succeed", async () => {
    const table = freshTable();
    const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(table).then((s) => s.store)));
    const schema = `${RUN_SCHEMA}_b`;
    try {
      const results = await Promise.all(stores.map((s, i) => s.tryAdd("first", record(`node-${i}`))));
      expect(results.filter(Boolean).length).toBe(1);
      const tables = Array.from({ length: 4 }, (_, i) => `t${i}`);
      const open = (t: string) => PostgresDeterministicStateStore.open({ connectionString: PG_URL, schema, table: t });
      stores.push(...(await Promise.all(tables.map(open))));
      for (const t of tables) expect(await columnsOf(schema, t)).toHaveLength(5);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    }
  });

  it("uses an existing table with no CREATE privilege (a role that may only read and write it)", async () => {
    const table = freshTable();
    const role = `${RUN_SCHEMA}_rw`;
    await (await openStore(table)).store.close();
    await withClient(async (c) => {
      await c.query(`CREATE ROLE "${role}" LOGIN`);
      await c.query(`GRANT USAGE ON SCHEMA "${RUN_SCHEMA}" TO "${role}"`);
      await c.query(`GRANT SELECT, INSERT, UPDATE ON "${RUN_SCHEMA}"."${table}" TO "${role}"`);
    });
    try {
      const url = new URL(PG_URL);
      url.username = role;
      const store = await PostgresDeterministicStateStore.open({
        connectionString: url.href,
        schema: RUN_SCHEMA,
        table,
      });
      expect(await store.tryAdd("k", record("x"))).toBe(true);
      await store.close();
      // The same role cannot create a table: the open above did not try to.
      const refused = await rejection(
        PostgresDeterministicStateStore.open({ connectionString: url.href, schema: RUN_SCHEMA, table: freshTable() }),
      );
      expect([refused.code, refused.metadata.sqlState]).toEqual([ErrorCodes.deterministic.storeUnavailable, "42501"]);
    } finally {
      await withClient(async (c) => {
        await c.query(`DROP OWNED BY "${role}"`);
        await c.query(`DROP ROLE "${role}"`);
      });
    }
  });

  it("prune deletes old records of the coordinator's kinds in batches, and nothing else", async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    const table = freshTable();
    const store = await PostgresDeterministicStateStore.open({
      connectionString: PG_URL,
      schema: RUN_SCHEMA,
      table,
      clock,
    });
    try {
      const day = 86_400_000;
      const at = (kind: string, ageMs: number) => ({ ...record("x"), kind, recordedAt: clock.now() - ageMs });
      for (let i = 0; i < 25; i++) await store.tryAdd(`old-effect-${i}`, at(DETERMINISTIC_EFFECT_KIND, 3 * day));
      await store.tryAdd("old-gate", at(DETERMINISTIC_VERSION_KIND, 3 * day));
      await store.tryAdd("old-app-state", at("app.state", 3 * day));
      await store.tryAdd("new-effect", at(DETERMINISTIC_EFFECT_KIND, day / 2));

      expect(await store.prune({ maxAgeMs: day, batchSize: 10 })).toEqual({ deleted: 26 });
      const keys = await withClient(async (c) =>
        (await c.query<{ key: string }>(`SELECT key FROM "${RUN_SCHEMA}"."${table}" ORDER BY key`)).rows.map(
          (r) => r.key,
        ),
      );
      expect(keys).toEqual(["new-effect", "old-app-state"]);
      expect(await store.prune({ maxAgeMs: day })).toEqual({ deleted: 0 });
      // A pruned key is absent: the event it guarded would be recorded (and executed) again.
      expect(await store.tryAdd("old-gate", at(DETERMINISTIC_VERSION_KIND, 0))).toBe(true);
      expect(await store.prune({ maxAgeMs: day, kinds: ["app.state"] })).toEqual({ deleted: 1 });
      for (const [option, bad] of [
        ["maxAgeMs", {}],
        ["maxAgeMs", { maxAgeMs: -1 }],
        ["batchSize", { maxAgeMs: 1, batchSize: 0 }],
        ["kinds", { maxAgeMs: 1, kinds: [" "] }],
      ] as const) {
        const error = await rejection(store.prune(bad as never));
        expect([error.code, error.metadata.option]).toEqual([ErrorCodes.resourceLease.optionsInvalid, option]);
      }
    } finally {
      await store.close();
    }
  });

  it("borrows a pool it is given and leaves it open on close; ends the pool it opened", async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    const borrowed = await PostgresDeterministicStateStore.open({ pool, schema: RUN_SCHEMA, table: freshTable() });
    expect(borrowed.pool).toBe(pool);
    expect(await borrowed.tryAdd("k", record("x"))).toBe(true);
    await borrowed.close();
    expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    await pool.end();

    const { store: own } = await openStore(freshTable());
    expect(own.pool.totalCount).toBeGreaterThan(0);
    await own.close();
    expect(own.pool.ended).toBe(true);
    expect(own.pool.totalCount).toBe(0);
  });

  it("refuses calls after close with unavailable store_closed", async () => {
    const { store } = await openStore(freshTable());
    await store.close();
    await store.close();
    for (const call of [store.get("k"), store.set("k", record("x")), store.tryAdd("k", record("x"))]) {
      const error = await rejection(call);
      expect([error.status, error.code, error.metadata.store]).toEqual([
        "unavailable",
        ErrorCodes.deterministic.storeClosed,
        "postgres",
      ]);
    }
  });

  it("refuses bad options with resourcelease.options.invalid naming the option", async () => {
    const url = { connectionString: PG_URL };
    const bad: [string, PostgresDeterministicStateStoreOptions][] = [
      ["pool", {}],
      ["connectionString", { ...url, pool: new pg.Pool() }],
      ["connectionString", { connectionString: "mysql://127.0.0.1/test" }],
      ["connectionString", { connectionString: " " }],
      ["pool", { pool: {} as never }],
      ["schema", { ...url, schema: "  " }],
      ["table", { ...url, table: "t".repeat(64) }],
      ["table", { ...url, table: "é".repeat(32) }],
      ["table", { ...url, table: "a\u0000b" }],
      ["table", { ...url, table: 5 as unknown as string }],
      ["maxConnections", { ...url, maxConnections: 0 }],
      ["connectTimeoutMs", { ...url, connectTimeoutMs: -1 }],
      ["queryTimeoutMs", { ...url, queryTimeoutMs: 0 }],
      ["queryTimeoutMs", { ...url, queryTimeoutMs: 2 ** 31 }],
    ];
    for (const [option, options] of bad) {
      const error = await rejection(PostgresDeterministicStateStore.open(options));
      expect([error.status, error.code, error.metadata.option], `${option}: ${JSON.stringify(options)}`).toEqual([
        "invalid-argument",
        ErrorCodes.resourceLease.optionsInvalid,
        option,
      ]);
    }
  });

  it("refuses keys and kinds that text cannot keep exactly (NUL, lone surrogates)", async () => {
    const { store } = await openStore(freshTable());
    try {
      for (const [key, reason] of [
        ["a\u0000b", "nul"],
        ["a\uD800", "lone_surrogate"],
      ]) {
        const error = await rejection(store.tryAdd(key!, record("x")));
        expect([error.status, error.code, error.metadata.reason]).toEqual([
          "invalid-argument",
          ErrorCodes.deterministic.keyInvalid,
          reason,
        ]);
      }
      for (const kind of ["a\u0000", "\uDC00"]) {
        const error = await rejection(store.set("k", { ...record("x"), kind }));
        expect([error.code, error.metadata.field]).toEqual([ErrorCodes.deterministic.recordInvalid, "kind"]);
      }
      expect(await store.tryAdd("\uFFFD", record("replacement"))).toBe(true);
      expect(await store.get("k")).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("fails with unavailable store_unavailable, the driver's error as its cause, when the server fails", async () => {
    const free = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => free.once("listening", resolve));
    const port = (free.address() as { port: number }).port;
    await new Promise((resolve) => free.close(resolve));
    const down = await rejection(
      PostgresDeterministicStateStore.open({ connectionString: `postgres://postgres@127.0.0.1:${port}/test` }),
    );
    expect([down.status, down.code, down.metadata.operation]).toEqual([
      "unavailable",
      ErrorCodes.deterministic.storeUnavailable,
      "createTable",
    ]);
    expect(down.cause).toBeInstanceOf(Error);

    // The server goes away after the store opened.
    const proxy = await startProxy(machine);
    const connectionString = `postgres://postgres@127.0.0.1:${proxy.port}/test`;
    const store = await PostgresDeterministicStateStore.open({
      connectionString,
      schema: RUN_SCHEMA,
      table: freshTable(),
    });
    expect(await store.tryAdd("k", record("x"))).toBe(true);
    await proxy.close();
    const lost = await rejection(store.get("k"));
    expect([lost.status, lost.code, lost.metadata.operation]).toEqual([
      "unavailable",
      ErrorCodes.deterministic.storeUnavailable,
      "get",
    ]);
    expect(lost.cause).toBeInstanceOf(Error);
    await store.close();

    // A table that is not the store's: the query fails, and the SQLSTATE travels in the metadata.
    const table = freshTable();
    await withClient((c) => c.query(`CREATE TABLE "${RUN_SCHEMA}"."${table}" (key text PRIMARY KEY)`));
    const { store: foreign } = await openStore(table);
    const wrong = await rejection(foreign.get("k"));
    expect([wrong.code, wrong.metadata.operation, wrong.metadata.sqlState]).toEqual([
      ErrorCodes.deterministic.storeUnavailable,
      "get",
      "42703",
    ]);
    await foreign.close();
  });
});
