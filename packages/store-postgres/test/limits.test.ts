import { randomBytes } from "node:crypto";
import { ErrorCodes, type OmniRelayError } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { PostgresDeterministicStateStore } from "../src/index.js";
import { dropRunSchema, freshTable, openStore, PG_URL, RUN_SCHEMA, record, rejection, withClient } from "./helpers.js";
import { startProxy } from "./proxy.js";

// What the PostgreSQL store refuses or gives up on: keys and payloads past its limits, inputs the server refuses,
// rows that are not records, and a server that stops answering.
afterAll(async () => {
  await dropRunSchema();
});

const machine = { host: new URL(PG_URL).hostname, port: Number(new URL(PG_URL).port || 5432) };
const MiB = 1024 * 1024;

const inRunSchema = (table: string) => `"${RUN_SCHEMA}"."${table}"`;

describe("PostgresDeterministicStateStore limits", () => {
  it("refuses a key longer than maxKeyBytes of UTF-8 with key_invalid, and keeps one that long", async () => {
    const { store } = await openStore(freshTable());
    try {
      // Incompressible, so the primary-key index gets it as it is (about 2,700 bytes is the most an entry holds).
      const longest = randomBytes(1500).toString("base64").slice(0, 2000);
      expect(await store.tryAdd(longest, record("x"))).toBe(true);
      expect(await store.get(longest)).toEqual(record("x"));
      for (const key of [randomBytes(2100).toString("base64"), `${longest}a`, "é".repeat(1001)]) {
        for (const call of [store.tryAdd(key, record("x")), store.set(key, record("x")), store.get(key)]) {
          const error = await rejection(call);
          expect([error.status, error.code, error.metadata.reason, error.metadata.maxBytes]).toEqual([
            "invalid-argument",
            ErrorCodes.deterministic.keyInvalid,
            "too_long",
            "2000",
          ]);
        }
      }
      expect(PostgresDeterministicStateStore.maxKeyBytes).toBe(2000);
    } finally {
      await store.close();
    }
  });

  it("refuses a payload over maxPayloadBytes with record_invalid, keeps one that large, and reads none larger", async () => {
    const table = freshTable();
    const { store } = await openStore(table);
    try {
      const largest = { ...record("x"), payload: new Uint8Array(16 * MiB).fill(7) };
      expect(await store.tryAdd("largest", largest)).toBe(true);
      // Compared as buffers: a deep equality walks 16 Mi indices.
      const read = await store.get("largest");
      expect(read !== undefined && Buffer.from(read.payload).equals(largest.payload)).toBe(true);
      const over = { ...record("x"), payload: new Uint8Array(16 * MiB + 1) };
      for (const call of [store.tryAdd("over", over), store.set("largest", over)]) {
        const error = await rejection(call);
        expect([error.status, error.code, error.metadata.field]).toEqual([
          "invalid-argument",
          ErrorCodes.deterministic.recordInvalid,
          "payload",
        ]);
      }
      // A row written by something else with a larger payload: a coded error, and its bytes stay on the server.
      await withClient((c) =>
        c.query(`UPDATE ${inRunSchema(table)} SET payload = payload || '\\x01'::bytea WHERE key = 'largest'`),
      );
      const error = await rejection(store.get("largest"));
      expect([error.status, error.code, error.metadata.field]).toEqual([
        "data-loss",
        ErrorCodes.deterministic.storeCorrupt,
        "payload_size",
      ]);
      expect(PostgresDeterministicStateStore.maxPayloadBytes).toBe(16 * MiB);
    } finally {
      await store.close();
    }
  });

  it("refuses rows that are not records with store_corrupt instead of returning them", async () => {
    const table = freshTable();
    const { store } = await openStore(table);
    try {
      await withClient((c) =>
        c.query(`INSERT INTO ${inRunSchema(table)} VALUES ('bigVersion', 'k', 9007199254740993, 1, '\\x01'),
          ('nanTime', 'k', 1, 'NaN', '\\x01'), ('infTime', 'k', 1, '-Infinity', '\\x01'),
          ('blankKind', ' ', 1, 1, '\\x01'), ('fine', 'k', -9007199254740991, -1.5, '\\x')`),
      );
      for (const [key, field] of [
        ["bigVersion", "version"],
        ["nanTime", "recordedAt"],
        ["infTime", "recordedAt"],
        ["blankKind", "kind"],
      ]) {
        const error = await rejection(store.get(key!));
        expect([error.status, error.code, error.metadata.key, error.metadata.field]).toEqual([
          "data-loss",
          ErrorCodes.deterministic.storeCorrupt,
          key,
          field,
        ]);
      }
      const fine = { kind: "k", version: -9007199254740991, payload: new Uint8Array(), recordedAt: -1.5 };
      expect(await store.get("fine")).toEqual(fine);
      // A payload column changed to text outside the store: its "56" is not bytes.
      await store.set("text", { ...record("56") });
      const toText = `ALTER TABLE ${inRunSchema(table)} ALTER COLUMN payload TYPE text USING encode(payload, 'escape')`;
      await withClient((c) => c.query(toText));
      const error = await rejection(store.get("text"));
      expect([error.code, error.metadata.field]).toEqual([ErrorCodes.deterministic.storeCorrupt, "payload"]);
    } finally {
      await store.close();
    }
  });

  it("turns an input the server refuses (SQLSTATE class 22 or 54) into invalid-argument, not unavailable", async () => {
    const table = freshTable();
    // A table made by someone else, narrower than the store's: a short kind column, and an index on the payload.
    await withClient(async (c) => {
      await c.query(`CREATE TABLE ${inRunSchema(table)} (key text COLLATE "C" PRIMARY KEY, kind varchar(8) NOT NULL,
        version bigint NOT NULL, recorded_at double precision NOT NULL, payload bytea NOT NULL)`);
      await c.query(`CREATE INDEX ON ${inRunSchema(table)} (payload)`);
    });
    const { store } = await openStore(table);
    try {
      const cases = [
        [store.tryAdd("k", { ...record("x"), kind: "a kind too long" }), "22001"],
        [store.set("k", { ...record("x"), kind: "k", payload: randomBytes(10_000) }), "54000"],
      ] as const;
      for (const [call, sqlState] of cases) {
        const error = await rejection(call);
        expect([error.status, error.code, error.metadata.sqlState]).toEqual([
          "invalid-argument",
          ErrorCodes.deterministic.recordInvalid,
          sqlState,
        ]);
        expect(error.cause).toBeInstanceOf(Error);
      }
      expect(await store.tryAdd("k", { ...record("x"), kind: "k" })).toBe(true);
    } finally {
      await store.close();
    }
    // A table whose key is a number: the server cannot read the key.
    const numbered = freshTable();
    await withClient((c) =>
      c.query(`CREATE TABLE ${inRunSchema(numbered)} (key integer PRIMARY KEY, kind text, version bigint,
        recorded_at double precision, payload bytea)`),
    );
    const { store: foreign } = await openStore(numbered);
    const error = await rejection(foreign.get("k"));
    expect([error.status, error.code, error.metadata.sqlState]).toEqual([
      "invalid-argument",
      ErrorCodes.deterministic.keyInvalid,
      "22P02",
    ]);
    await foreign.close();
  });

  it("fails a call with store_unavailable after queryTimeoutMs when the server stops answering", async () => {
    await using proxy = await startProxy(machine);
    const store = await PostgresDeterministicStateStore.open({
      connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
      schema: RUN_SCHEMA,
      table: freshTable(),
      queryTimeoutMs: 300,
    });
    try {
      expect(await store.tryAdd("before", record("x"))).toBe(true);
      proxy.freeze();
      const started = Date.now();
      const pending = rejection(store.tryAdd("after", record("x")));
      const outcome = await Promise.race([pending, new Promise((resolve) => setTimeout(resolve, 3000, "pending"))]);
      expect(outcome, "the call settled").not.toBe("pending");
      const error = outcome as OmniRelayError;
      expect([error.status, error.code, error.metadata.operation]).toEqual([
        "unavailable",
        ErrorCodes.deterministic.storeUnavailable,
        "tryAdd",
      ]);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await proxy.close();
      await store.close();
    }
    // The server-side bound too: a statement (or a lock wait) that runs longer is cancelled by the server.
    const direct = await PostgresDeterministicStateStore.open({
      connectionString: PG_URL,
      schema: RUN_SCHEMA,
      table: freshTable(),
      queryTimeoutMs: 300,
    });
    const timeout = await direct.pool.query("SHOW statement_timeout");
    await direct.close();
    expect(timeout.rows).toEqual([{ statement_timeout: "300ms" }]);
  });
});
