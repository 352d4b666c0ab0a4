import { randomUUID } from "node:crypto";
import type {
  CallOptions,
  ObjectListEntry,
  ObjectPutOptions,
  ResourceLeaseObjectStore,
  ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ObjectStorageErrorCodes,
  ObjectStorageEventReader,
  ObjectStorageResourceLeaseReplicator,
} from "../src/index.js";
import { collect, range } from "./events.js";

/** A backend under test: `newStore()` builds a fresh client on the same bucket, as a restarted process would. */
export interface ContractBackend {
  newStore(): ResourceLeaseObjectStore;
  close(): Promise<void>;
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) => (data === undefined ? undefined : new TextDecoder().decode(data));

/** Wraps a store, recording list calls (prefix and startAfter). */
function spy(inner: ResourceLeaseObjectStore) {
  const lists: { prefix: string; startAfter: string | undefined }[] = [];
  const store: ResourceLeaseObjectStore = {
    put: (key: string, data: Uint8Array, type: string, options?: ObjectPutOptions) =>
      inner.put(key, data, type, options),
    get: (key: string, options?: CallOptions) => inner.get(key, options),
    list(prefix: string, startAfter?: string, options?: CallOptions): AsyncIterable<ObjectListEntry> {
      lists.push({ prefix, startAfter });
      return inner.list(prefix, startAfter, options);
    },
  };
  return { store, lists };
}

const seqs = (events: readonly ResourceLeaseReplicationEvent[]) => events.map((e) => e.sequenceNumber);

/**
 * The one contract every object store runs: store semantics (atomic put, create-if-absent, ordered listing with
 * startAfter) and the replicator on top of it (write, restart, resume, read back in order, refuse overwrite).
 */
export function describeObjectStoreContract(name: string, start: () => Promise<ContractBackend>): void {
  describe(`object store contract: ${name}`, () => {
    let backend: ContractBackend;
    beforeAll(async () => {
      backend = await start();
    }, 60_000);
    afterAll(async () => {
      await backend?.close();
    });
    const prefix = () => `${randomUUID()}/resourcelease/`;

    it("puts, gets, and refuses to overwrite with ifNoneMatch", async () => {
      const store = backend.newStore();
      const p = prefix();
      expect(await store.get(`${p}missing.json`)).toBeUndefined();
      await store.put(`${p}a.json`, bytes("one"), "application/json", { ifNoneMatch: "*" });
      expect(text(await store.get(`${p}a.json`))).toBe("one");
      await expect(
        store.put(`${p}a.json`, bytes("two"), "application/json", { ifNoneMatch: "*" }),
      ).rejects.toMatchObject({ status: "already-exists", code: ObjectStorageErrorCodes.exists });
      expect(text(await store.get(`${p}a.json`))).toBe("one");
      await store.put(`${p}a.json`, bytes("three"), "application/json");
      expect(text(await store.get(`${p}a.json`))).toBe("three");
    });

    it("lists keys under a prefix in lexicographic order, strictly after startAfter", async () => {
      const store = backend.newStore();
      const p = prefix();
      // (s3rver misorders "a-x" vs "a/1", which real S3 orders by bytes; the fs test covers that case.)
      const keys = [`${p}b/2.json`, `${p}a0.json`, `${p}a/1.json`, `${p}b/1.json`, `${p}c.json`];
      for (const key of keys) await store.put(key, bytes(key), "text/plain");
      await store.put(`${p.slice(0, -1)}-other/x.json`, bytes("x"), "text/plain");
      const all = (await collect(store.list(p))).map((e) => e.key);
      expect(all).toEqual([...keys].sort());
      const after = (await collect(store.list(p, `${p}a/1.json`))).map((e) => e.key);
      expect(after).toEqual([`${p}a0.json`, `${p}b/1.json`, `${p}b/2.json`, `${p}c.json`]);
      expect((await collect(store.list(`${p}b/`))).map((e) => e.key)).toEqual([`${p}b/1.json`, `${p}b/2.json`]);
    });

    it("writes, restarts, resumes after the newest segment and reads everything back in order", async () => {
      const p = prefix();
      const first = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), {
        keyPrefix: p,
        maxSegmentEvents: 2,
        checkpointEverySegments: 2,
      });
      await first.publish(range(1, 3));
      await first.publish(range(4, 4));
      await first.publish(range(5, 7));
      expect(await first.lastSequence()).toBe(7);
      await first.close();

      const { store, lists } = spy(backend.newStore());
      const second = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: p, maxSegmentEvents: 2 });
      expect(await second.lastSequence()).toBe(7);
      // Resume lists only after the checkpoint's segment (plus an empty probe of the next bucket), never the prefix.
      expect(lists.every((l) => l.prefix.startsWith(`${p}events/0`))).toBe(true);
      expect(lists[0]?.startAfter).toBe(`${p}events/00000000000000/00000000000000000007.jsonl`);

      await second.publish(range(8, 9));
      expect(seqs(await collect(second.read(1)))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(seqs(await collect(second.read(5, 2)))).toEqual([5, 6]);
      const reader = new ObjectStorageEventReader({ store: backend.newStore(), keyPrefix: p });
      const entries = await collect(reader.entries({ from: 4 }));
      expect(entries.map((e) => e.kind)).toEqual(Array(6).fill("event"));
      const events = await collect(reader.events());
      expect(events[2]).toMatchObject({ sequenceNumber: 3, principal: "spiffe://mesh/worker-a", peerId: "worker-a" });
      expect(text(events[2]?.payload?.body && new Uint8Array(events[2].payload.body))).toBe('{"n":3}');
      await second.close();
    });

    it("never overwrites history: a producer restarting at 1 is refused and the log resumes after the highest key", async () => {
      const p = prefix();
      const original = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      await original.publish(range(1, 3));
      await original.close();
      const before = await collect(new ObjectStorageEventReader({ store: backend.newStore(), keyPrefix: p }).events());

      const restarted = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      await expect(restarted.publish(range(1, 2))).rejects.toMatchObject({
        status: "failed-precondition",
        code: ObjectStorageErrorCodes.sequenceGap,
        metadata: { sequence: "1", expected: "4" },
      });
      await restarted.publish(range(4, 4));
      const after = await collect(restarted.read(1));
      expect(after.slice(0, 3)).toEqual(before);
      expect(seqs(after)).toEqual([1, 2, 3, 4]);
      await restarted.close();
    });

    it("a stale second writer on the same prefix gets already-exists and writes nothing", async () => {
      const p = prefix();
      const a = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      const b = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      await a.publish(range(1, 2));
      const stale = range(1, 2).map((e) => ({ ...e, peerId: "stale-writer" }));
      await expect(b.publish(stale)).rejects.toMatchObject({
        status: "already-exists",
        code: ObjectStorageErrorCodes.exists,
      });
      expect(b.faulted).toBe(true);
      await expect(b.publish(range(3, 3))).rejects.toMatchObject({ code: ObjectStorageErrorCodes.writeFailed });
      const stored = await collect(a.read(1));
      expect(stored.map((e) => e.peerId)).toEqual(["worker-a", "worker-a"]);
      await a.close();
      await b.close();
    });
  });
}
