import { randomBytes } from "node:crypto";
import { OmniRelayError } from "@omnirelay/core";
import type { DeterministicRecord } from "@omnirelay/core/deterministic";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { RedisDeterministicStateStore } from "../src/index.js";

/** The machine's Redis (node-svc starts it before the session and before CI). */
export const REDIS_URL = process.env.OMNIRELAY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** This run's key prefix: every key a test writes starts with it, and {@link deleteRunKeys} removes them all. */
export const RUN_PREFIX = `omnirelay-test:${process.pid}-${randomBytes(4).toString("hex")}:`;

let next = 0;
/** A prefix of its own for one store (inside this run's prefix). */
export const freshPrefix = () => `${RUN_PREFIX}${next++}:`;

/** A store on the machine's Redis with its own connection. */
export async function openStore(keyPrefix: string) {
  const store = await RedisDeterministicStateStore.open({ url: REDIS_URL, keyPrefix });
  return { keyPrefix, store, close: () => store.close() };
}

/** A plain client on the machine's Redis, for looking underneath the store. */
export const rawClient = () => new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });

/** Deletes every key of this run; returns how many there were. */
export async function deleteRunKeys(): Promise<number> {
  const client = rawClient();
  try {
    let deleted = 0;
    let cursor = "0";
    do {
      const [nextCursor, keys] = await client.scan(cursor, "MATCH", `${RUN_PREFIX}*`, "COUNT", 1000);
      cursor = nextCursor;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== "0");
    return deleted;
  } finally {
    await client.quit();
  }
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
