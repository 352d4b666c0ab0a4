import { randomBytes } from "node:crypto";
import { OmniRelayError } from "@omnirelay/core";
import type { DeterministicRecord } from "@omnirelay/core/deterministic";
import pg from "pg";
import { expect } from "vitest";
import { PostgresDeterministicStateStore } from "../src/index.js";

/** The machine's PostgreSQL (node-svc starts it before the session and before CI; trust auth, database `test`). */
export const PG_URL = process.env.OMNIRELAY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** This run's schema: every table a test makes is in it, and {@link dropRunSchema} drops it. */
export const RUN_SCHEMA = `omnirelay_test_${process.pid}_${randomBytes(4).toString("hex")}`;

let next = 0;
/** A table name of its own for one store (in this run's schema). */
export const freshTable = () => `state_${next++}`;

/** A store on the machine's PostgreSQL with its own pool. */
export async function openStore(table: string) {
  const store = await PostgresDeterministicStateStore.open({ connectionString: PG_URL, schema: RUN_SCHEMA, table });
  return { table, store, close: () => store.close() };
}

/** Runs `use` with a plain client on the machine's PostgreSQL, for looking underneath the store. */
export async function withClient<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Drops this run's schema and everything in it. */
export async function dropRunSchema(): Promise<void> {
  await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${RUN_SCHEMA}" CASCADE`));
}

export const record = (text: string, version = 1): DeterministicRecord => ({
  kind: "test.record",
  version,
  payload: new TextEncoder().encode(text),
  recordedAt: 1_767_268_800_000,
});

/** The OmniRelayError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<OmniRelayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(OmniRelayError.is(error), `rejected with an OmniRelayError: ${String(error)}`).toBe(true);
  return error as OmniRelayError;
}
