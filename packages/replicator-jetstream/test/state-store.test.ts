import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCodes } from "@omnirelay/core";
import { describeDeterministicStoreConformance } from "@omnirelay/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamDeterministicStateStore } from "../src/index.js";
import { NATS_URL, rejectionOf } from "./helpers.js";

// Real parts: the machine's NATS server; every check gets a bucket of its own, removed at the end.
const buckets = new Set<string>();
const freshBucket = () => {
  const name = `OMNI_DET_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  buckets.add(name);
  return name;
};
const openStore = async (bucket: string) => {
  const store = await JetStreamDeterministicStateStore.open({ servers: NATS_URL, bucket });
  return { bucket, store, close: () => store.close() };
};
let nc: NatsConnection | undefined;
const connection = async () => {
  nc ??= await connect({ servers: NATS_URL });
  return nc;
};
afterAll(async () => {
  const jsm = await jetstreamManager(await connection());
  for (const bucket of buckets) await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
  await nc?.close();
});

describeDeterministicStoreConformance(
  "JetStreamDeterministicStateStore",
  {
    create: () => openStore(freshBucket()),
    reopen: (closed) => openStore(closed.bucket),
    openAnother: (open) => openStore(open.bucket),
  },
  { test: { describe, it } },
);

const record = (kind: string) => ({ kind, version: 1, payload: Uint8Array.from([1, 2]), recordedAt: 1 });

describe("JetStreamDeterministicStateStore beyond the contract", () => {
  it("refuses a key with a lone surrogate (it would collide with U+FFFD) and stores nothing", async () => {
    await using store = await JetStreamDeterministicStateStore.open({ servers: NATS_URL, bucket: freshBucket() });
    for (const key of ["a\uD800", "\uDC00b"]) {
      const error = await rejectionOf(store.tryAdd(key, record("x")));
      expect([error.status, error.code, error.metadata.reason]).toEqual([
        "invalid-argument",
        ErrorCodes.deterministic.keyInvalid,
        "lone_surrogate",
      ]);
    }
    expect(await store.get("a\uFFFD")).toBeUndefined();
  });

  it("a value another program wrote under a key reads as data-loss store_corrupt, not as a record", async () => {
    const bucket = freshBucket();
    await using store = await JetStreamDeterministicStateStore.open({ servers: NATS_URL, bucket });
    const kv = await new Kvm(await connection()).open(bucket);
    await kv.put(Buffer.from("k", "utf8").toString("base64url"), new TextEncoder().encode("not a record"));
    const error = await rejectionOf(store.get("k"));
    expect([error.status, error.code]).toEqual(["data-loss", ErrorCodes.deterministic.storeCorrupt]);
    // tryAdd still refuses the key: it holds a value.
    expect(await store.tryAdd("k", record("x"))).toBe(false);
  });

  it("a deleted key can be added again", async () => {
    const bucket = freshBucket();
    await using store = await JetStreamDeterministicStateStore.open({ servers: NATS_URL, bucket });
    expect(await store.tryAdd("k", record("first"))).toBe(true);
    await (await new Kvm(await connection()).open(bucket)).delete(Buffer.from("k").toString("base64url"));
    expect(await store.get("k")).toBeUndefined();
    expect(await store.tryAdd("k", record("second"))).toBe(true);
    expect((await store.get("k"))?.kind).toBe("second");
  });

  it("refuses calls after close with unavailable store_closed, and bad options with options.invalid", async () => {
    const store = await JetStreamDeterministicStateStore.open({ servers: NATS_URL, bucket: freshBucket() });
    await store.close();
    await store.close();
    for (const call of [store.get("k"), store.set("k", record("x")), store.tryAdd("k", record("x"))]) {
      const error = await rejectionOf(call);
      expect([error.status, error.code, error.metadata.store]).toEqual([
        "unavailable",
        ErrorCodes.deterministic.storeClosed,
        "jetstream",
      ]);
    }
    const bad: [string, Parameters<typeof JetStreamDeterministicStateStore.open>[0]][] = [
      ["connection", {}],
      ["connection", { servers: NATS_URL, connection: await connection() }],
      ["bucket", { servers: NATS_URL, bucket: "has.dot" }],
      ["replicas", { servers: NATS_URL, replicas: 0 }],
      ["ttlMs", { servers: NATS_URL, ttlMs: 10 }],
      ["timeoutMs", { servers: NATS_URL, timeoutMs: 1.5 }],
    ];
    for (const [option, options] of bad) {
      const error = await rejectionOf(JetStreamDeterministicStateStore.open(options));
      expect([error.code, error.metadata.option]).toEqual([ErrorCodes.resourceLease.optionsInvalid, option]);
    }
  });

  it("a server nobody answers on fails open with store_unavailable within its timeout", async () => {
    const error = await rejectionOf(
      JetStreamDeterministicStateStore.open({ servers: "nats://127.0.0.1:1", timeoutMs: 500 }),
    );
    expect([error.status, error.code]).toEqual(["unavailable", ErrorCodes.deterministic.storeUnavailable]);
  });
});
