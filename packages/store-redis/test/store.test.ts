import { createServer } from "node:net";
import { ErrorCodes } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { RedisDeterministicStateStore, type RedisDeterministicStateStoreOptions } from "../src/index.js";
import { deleteRunKeys, freshPrefix, openStore, REDIS_URL, rawClient, record, rejection } from "./helpers.js";
import { startRedisProxy } from "./proxy.js";

// Semantics, round trips, keys, validation and racing instances: conformance.test.ts and nodes.test.ts. Here: what
// only the Redis store has (prefix, options, the connection it owns or borrows, failures of Redis itself).
afterAll(async () => {
  await deleteRunKeys();
});

const machineRedis = { host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) };

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("RedisDeterministicStateStore", () => {
  it("stores a record at keyPrefix + key, and stores with other prefixes do not see it", async () => {
    const prefix = freshPrefix();
    const { store } = await openStore(prefix);
    const { store: other } = await openStore(freshPrefix());
    const raw = rawClient();
    try {
      expect(store.keyPrefix).toBe(prefix);
      expect(await store.tryAdd("effect/1", record("one"))).toBe(true);
      expect(await raw.exists(`${prefix}effect/1`)).toBe(1);
      expect(await other.get("effect/1")).toBeUndefined();
      expect(await other.tryAdd("effect/1", record("two"))).toBe(true);
      expect(await store.get("effect/1")).toEqual(record("one"));
    } finally {
      await Promise.all([store.close(), other.close(), raw.quit()]);
    }
  });

  it("borrows a client it is given and leaves it open on close; closes the connection it opened", async () => {
    const client = rawClient();
    const borrowed = await RedisDeterministicStateStore.open({ client, keyPrefix: freshPrefix() });
    expect(await borrowed.tryAdd("k", record("x"))).toBe(true);
    await borrowed.close();
    expect(await client.ping()).toBe("PONG");
    await client.quit();

    await using proxy = await startRedisProxy(machineRedis);
    const own = await RedisDeterministicStateStore.open({ url: proxy.url, keyPrefix: freshPrefix() });
    expect(proxy.connections).toBe(1);
    await own.close();
    await expect.poll(() => proxy.connections).toBe(0);
  });

  it("with ttlMs, records written by tryAdd and set expire; without it they never do", async () => {
    const prefix = freshPrefix();
    const { store: forever } = await openStore(prefix);
    const expiring = await RedisDeterministicStateStore.open({ url: REDIS_URL, keyPrefix: prefix, ttlMs: 600_000 });
    try {
      expect(expiring.ttlMs).toBe(600_000);
      await forever.tryAdd("forever", record("x"));
      await expiring.tryAdd("added", record("x"));
      await expiring.set("set", record("x"));
      const ttl = (key: string) => withRaw((r) => r.pttl(`${prefix}${key}`));
      expect(await ttl("forever")).toBe(-1);
      for (const key of ["added", "set"]) {
        expect(await ttl(key)).toBeGreaterThan(0);
        expect(await ttl(key)).toBeLessThanOrEqual(600_000);
      }
      // Expired is absent: a key whose TTL ran out can be added again.
      await withRaw((r) => r.pexpire(`${prefix}added`, 1));
      await expect.poll(() => expiring.get("added")).toBeUndefined();
      expect(await expiring.tryAdd("added", record("again"))).toBe(true);
    } finally {
      await Promise.all([forever.close(), expiring.close()]);
    }
  });

  it("refuses calls after close with unavailable store_closed", async () => {
    const { store } = await openStore(freshPrefix());
    await store.close();
    await store.close();
    for (const call of [store.get("k"), store.set("k", record("x")), store.tryAdd("k", record("x"))]) {
      const error = await rejection(call);
      expect([error.status, error.code, error.metadata.store]).toEqual([
        "unavailable",
        ErrorCodes.deterministic.storeClosed,
        "redis",
      ]);
    }
  });

  it("refuses bad options with resourcelease.options.invalid naming the option", async () => {
    const bad: [string, RedisDeterministicStateStoreOptions][] = [
      ["client", {}],
      ["url", { url: REDIS_URL, client: rawClient() }],
      ["url", { url: "http://127.0.0.1:6379" }],
      ["url", { url: "  " }],
      ["keyPrefix", { url: REDIS_URL, keyPrefix: "   " }],
      ["keyPrefix", { url: REDIS_URL, keyPrefix: 7 as unknown as string }],
      ["keyPrefix", { url: REDIS_URL, keyPrefix: "p".repeat(201) }],
      ["commandTimeoutMs", { url: REDIS_URL, commandTimeoutMs: 0 }],
      ["commandTimeoutMs", { url: REDIS_URL, commandTimeoutMs: 1.5 }],
      ["ttlMs", { url: REDIS_URL, ttlMs: 0 }],
      ["ttlMs", { url: REDIS_URL, ttlMs: "1h" as unknown as number }],
      ["client", { client: {} as never }],
    ];
    for (const [option, options] of bad) {
      const error = await rejection(RedisDeterministicStateStore.open(options));
      expect([error.status, error.code, error.metadata.option], JSON.stringify(options.url)).toEqual([
        "invalid-argument",
        ErrorCodes.resourceLease.optionsInvalid,
        option,
      ]);
      if (options.client && "quit" in options.client) await options.client.quit();
    }
  });

  it("refuses a key with a lone surrogate (it would collide with U+FFFD in Redis)", async () => {
    const { store } = await openStore(freshPrefix());
    try {
      for (const key of ["a\uD800", "\uDC00b"]) {
        const error = await rejection(store.tryAdd(key, record("x")));
        expect([error.status, error.code, error.metadata.reason]).toEqual([
          "invalid-argument",
          ErrorCodes.deterministic.keyInvalid,
          "lone_surrogate",
        ]);
      }
      expect(await store.tryAdd("\uFFFD", record("replacement"))).toBe(true);
      expect(await store.tryAdd("🙂", record("pair"))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("reports a value that is not a record as data-loss store_corrupt", async () => {
    const prefix = freshPrefix();
    const { store } = await openStore(prefix);
    try {
      await withRaw((r) => r.set(`${prefix}foreign`, "hello"));
      await withRaw((r) => r.set(`${prefix}truncated`, Buffer.from([1, 0, 0, 0, 50, 123])));
      for (const key of ["foreign", "truncated"]) {
        const error = await rejection(store.get(key));
        expect([error.status, error.code, error.metadata.key]).toEqual([
          "data-loss",
          ErrorCodes.deterministic.storeCorrupt,
          key,
        ]);
      }
    } finally {
      await store.close();
    }
  });

  it("fails with unavailable store_unavailable, the Redis error as its cause, when Redis cannot be reached", async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const error = await rejection(RedisDeterministicStateStore.open({ url, commandTimeoutMs: 2000 }));
    expect([error.status, error.code, error.metadata.operation]).toEqual([
      "unavailable",
      ErrorCodes.deterministic.storeUnavailable,
      "ping",
    ]);
    expect(error.cause).toBeInstanceOf(Error);

    // A store whose Redis goes away after it opened.
    const proxy = await startRedisProxy(machineRedis);
    const store = await RedisDeterministicStateStore.open({ url: proxy.url, keyPrefix: freshPrefix() });
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
  });

  it("tryAdd still reports its win when the reply to SET NX is lost and ioredis resends it", async () => {
    await using proxy = await startRedisProxy(machineRedis);
    const prefix = freshPrefix();
    const store = await RedisDeterministicStateStore.open({ url: proxy.url, keyPrefix: prefix });
    try {
      proxy.loseNextNxReply();
      expect(await store.tryAdd("effect/7", record("mine"))).toBe(true);
      expect(proxy.lostReplies).toBe(1);
      expect(await store.get("effect/7")).toEqual(record("mine"));
      // The resend found the key taken (by the first send): a later tryAdd of another writer still loses.
      expect(await store.tryAdd("effect/7", record("later"))).toBe(false);
    } finally {
      await store.close();
    }
  });
});

async function withRaw<T>(use: (client: ReturnType<typeof rawClient>) => Promise<T>): Promise<T> {
  const client = rawClient();
  try {
    return await use(client);
  } finally {
    await client.quit();
  }
}
