import { ErrorCodes } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { RedisDeterministicStateStore } from "../src/index.js";
import { deleteRunKeys, freshPrefix, openStore, rawClient, record, rejection } from "./helpers.js";

// What the Redis store refuses: payloads past its limit, and keys that hold another Redis type.
afterAll(async () => {
  await deleteRunKeys();
});

const MiB = 1024 * 1024;

describe("RedisDeterministicStateStore limits", () => {
  it("refuses a payload over maxPayloadBytes with record_invalid, and keeps one that large", async () => {
    const { store } = await openStore(freshPrefix());
    try {
      const largest = { ...record("x"), payload: new Uint8Array(16 * MiB).fill(7) };
      expect(await store.tryAdd("largest", largest)).toBe(true);
      // Compared as buffers: a deep equality walks 16 Mi indices.
      const read = await store.get("largest");
      expect(read !== undefined && Buffer.from(read.payload).equals(largest.payload)).toBe(true);
      const over = { ...record("x"), payload: new Uint8Array(16 * MiB + 1) };
      for (const call of [store.tryAdd("over", over), store.set("largest", over)]) {
        const error = await rejection(call);
        expect([error.status, error.code, error.metadata.field, error.metadata.maxBytes]).toEqual([
          "invalid-argument",
          ErrorCodes.deterministic.recordInvalid,
          "payload",
          String(16 * MiB),
        ]);
      }
      expect(await store.get("over")).toBeUndefined();
      expect(RedisDeterministicStateStore.maxPayloadBytes).toBe(16 * MiB);
    } finally {
      await store.close();
    }
  });

  it("reports a key holding another Redis type (list, hash, set) as store_corrupt, not unavailable", async () => {
    const prefix = freshPrefix();
    const { store } = await openStore(prefix);
    const raw = rawClient();
    try {
      await raw.rpush(`${prefix}list`, "x");
      await raw.hset(`${prefix}hash`, "f", "v");
      await raw.sadd(`${prefix}set`, "m");
      for (const key of ["list", "hash", "set"]) {
        for (const [operation, call] of [
          ["get", store.get(key)],
          ["tryAdd", store.tryAdd(key, record("x"))],
        ] as const) {
          const error = await rejection(call);
          expect([error.status, error.code, error.metadata.key, error.metadata.operation]).toEqual([
            "data-loss",
            ErrorCodes.deterministic.storeCorrupt,
            key,
            operation,
          ]);
          expect(error.cause).toBeInstanceOf(Error);
        }
      }
      // set replaces a value of any type, as SET does.
      await store.set("list", record("x"));
      expect(await store.get("list")).toEqual(record("x"));
    } finally {
      await Promise.all([store.close(), raw.quit()]);
    }
  });
});
