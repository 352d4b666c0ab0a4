import { randomUUID } from "node:crypto";
import type { CallOptions, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { describeEventLogConformance, describeObjectStoreConformance } from "@omnirelay/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ObjectStorageEventReader, ObjectStorageResourceLeaseReplicator } from "../src/index.js";
import { collect, range } from "./events.js";

/** A running backend: `newStore()` builds a fresh client on the same bucket, as a restarted process would. */
export interface Backend {
  newStore(): ResourceLeaseObjectStore;
  close(): Promise<void>;
}

/** Wraps a store, recording list calls (prefix and startAfter). */
function spy(inner: ResourceLeaseObjectStore) {
  const lists: { prefix: string; startAfter: string | undefined }[] = [];
  const store: ResourceLeaseObjectStore = {
    put: (key: string, data: Uint8Array, options: ObjectPutOptions) => inner.put(key, data, options),
    get: (key: string, options?: CallOptions) => inner.get(key, options),
    list(prefix: string, startAfter?: string, options?: CallOptions): AsyncIterable<ObjectListEntry> {
      lists.push({ prefix, startAfter });
      return inner.list(prefix, startAfter, options);
    },
  };
  return { store, lists };
}

const seqs = (events: readonly ResourceLeaseReplicationEvent[]) => events.map((e) => e.sequenceNumber);
const text = (data: Uint8Array | undefined) => (data === undefined ? undefined : new TextDecoder().decode(data));

/**
 * Everything one backend runs: core's object-store conformance suite on its store, core's event-log conformance suite
 * on the replicator over it, and the replicator's own promises that no shared suite states (how little a resume
 * lists, what a stale second writer gets). The backend starts once for the file; every check uses fresh key prefixes.
 */
export function describeBackend<B extends Backend>(
  name: string,
  start: () => Promise<B>,
  extras: { contentTypeOf?: (backend: B, key: string) => Promise<string | undefined> } = {},
): void {
  let backend: B;
  beforeAll(async () => {
    backend = await start();
  }, 60_000);
  afterAll(async () => {
    await backend?.close();
  });
  const test = { describe, it };
  const client = async () => ({ store: backend.newStore(), close: async () => undefined });
  const { contentTypeOf } = extras;

  describeObjectStoreConformance(
    name,
    {
      create: client,
      openAnother: client,
      ...(contentTypeOf ? { contentTypeOf: (_: unknown, key: string) => contentTypeOf(backend, key) } : {}),
    },
    { test, existsCode: ErrorCodes.objectStorage.exists },
  );

  // Small segments and frequent checkpoints, so the suite's publishes are split and its reopens resume from a
  // checkpoint and a listing, as a long-running log's would.
  const openLog = async (keyPrefix: string) => {
    const log = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), {
      keyPrefix,
      maxSegmentEvents: 64,
      checkpointEverySegments: 3,
    });
    return { keyPrefix, log, close: () => log.close() };
  };
  describeEventLogConformance(
    `ObjectStorageResourceLeaseReplicator on ${name}`,
    { create: () => openLog(`log-${randomUUID()}/`), reopen: (closed) => openLog(closed.keyPrefix) },
    { test, gaps: "refused" },
  );

  describe(`object-storage replicator specifics: ${name}`, () => {
    const prefix = () => `${randomUUID()}/resourcelease/`;

    it("resumes after the newest segment, listing only after the checkpoint's segment", async () => {
      const p = prefix();
      const first = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), {
        keyPrefix: p,
        maxSegmentEvents: 2,
        checkpointEverySegments: 2,
      });
      await first.publish(range(1, 3));
      await first.publish(range(4, 4));
      await first.publish(range(5, 7));
      await first.close();

      const { store, lists } = spy(backend.newStore());
      const second = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: p, maxSegmentEvents: 2 });
      expect(await second.lastSequence()).toBe(7);
      // Resume lists only after the checkpoint's segment (plus an empty probe of the next bucket), never the prefix.
      expect(lists.every((l) => l.prefix.startsWith(`${p}events/0`))).toBe(true);
      expect(lists[0]?.startAfter).toBe(`${p}events/00000000000000/00000000000000000007.jsonl`);

      await second.publish(range(8, 9));
      const reader = new ObjectStorageEventReader({ store: backend.newStore(), keyPrefix: p });
      const entries = await collect(reader.entries({ from: 4 }));
      expect(entries.map((e) => e.kind)).toEqual(Array(6).fill("event"));
      const events = await collect(reader.events());
      expect(seqs(events)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(text(events[2]?.payload?.body)).toBe('{"n":3}');
      await second.close();
    });

    it("a producer restarting at 1 is refused with sequence_gap, naming the number it expects", async () => {
      const p = prefix();
      const original = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      await original.publish(range(1, 3));
      await original.close();
      const restarted = await ObjectStorageResourceLeaseReplicator.open(backend.newStore(), { keyPrefix: p });
      await expect(restarted.publish(range(1, 2))).rejects.toMatchObject({
        status: "failed-precondition",
        code: ErrorCodes.objectStorage.sequenceGap,
        metadata: { sequence: "1", expected: "4" },
      });
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
        code: ErrorCodes.objectStorage.exists,
      });
      expect(b.faulted).toBe(true);
      await expect(b.publish(range(3, 3))).rejects.toMatchObject({ code: ErrorCodes.objectStorage.writeFailed });
      const stored = await collect(a.read(1));
      expect(stored.map((e) => e.peerId)).toEqual(["worker-a", "worker-a"]);
      await a.close();
      await b.close();
    });
  });
}
