import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CallOptions } from "@omnirelay/core";
import { ErrorCodes, ResourceLeaseQueue } from "@omnirelay/core";
import {
  InMemoryResourceLeaseEventLog,
  type ObjectListEntry,
  type ObjectPutOptions,
  type ResourceLeaseObjectStore,
} from "@omnirelay/core/replication";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import {
  ObjectStorageEventReader,
  type ObjectStorageReadEntry,
  ObjectStorageResourceLeaseReplicator,
} from "../src/index.js";
import { collect, range } from "./events.js";

// Whoever can write the bucket (or the folder) decides what a reader sees. These tests plant what such a writer, or
// bit rot, could: links out of the root, listings that repeat or never end, giant objects. Each must end in a coded
// error or entry, never in a read outside the root, a hang or an uncoded crash.

const segment = (n: number) => {
  const digits = String(n).padStart(20, "0");
  return `log/events/${digits.slice(0, 14)}/${digits}.jsonl`;
};

/** A store whose `list` is replaced by `listing` and whose `get` may be replaced by `get`; writes go to `inner`. */
function hostile(
  inner: ResourceLeaseObjectStore,
  listing: (prefix: string, startAfter?: string) => AsyncIterable<ObjectListEntry>,
  get?: (key: string) => Promise<Uint8Array | undefined>,
): ResourceLeaseObjectStore {
  return {
    put: (key: string, data: Uint8Array, options: ObjectPutOptions) => inner.put(key, data, options),
    get: (key: string, options?: CallOptions) => (get ? get(key) : inner.get(key, options)),
    list: (prefix: string, startAfter?: string) => listing(prefix, startAfter),
  };
}

describe("object storage under a hostile bucket", () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "omnirelay-hostile-"));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  /** A filesystem store holding segments 1-2, 3-4, 5-6 under `log/`, and a folder outside its root. */
  const logAt = async (name: string) => {
    const root = join(base, name, "root");
    const outside = join(base, name, "outside");
    await mkdir(outside, { recursive: true });
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root, fsync: false });
    const log = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "log/", maxSegmentEvents: 2 });
    await log.publish(range(1, 6));
    await log.close();
    return { root, outside, store };
  };

  it("the filesystem store refuses a symbolic link planted in its root instead of reading or writing outside it", async () => {
    const { root, outside, store } = await logAt("symlinks");
    await writeFile(join(outside, "secret.txt"), "not yours\n");
    await symlink(join(outside, "secret.txt"), join(root, "log", "checkpoint-link.json"));
    await mkdir(join(outside, "bucket"));
    await writeFile(join(outside, "bucket", "00000000000001000000.jsonl"), "{}\n");
    await symlink(join(outside, "bucket"), join(root, "log", "events", "00000000000001"));

    const refused = { code: ErrorCodes.objectStorage.keyInvalid };
    await expect(store.get("log/checkpoint-link.json")).rejects.toMatchObject(refused);
    await expect(store.get("log/events/00000000000001/00000000000001000000.jsonl")).rejects.toMatchObject(refused);
    await expect(collect(store.list("log/events/00000000000001/"))).rejects.toMatchObject(refused);
    const put = store.put("log/events/00000000000001/00000000000001000001.jsonl", new Uint8Array([1]), {
      contentType: "application/x-ndjson",
      ifNoneMatch: "*",
    });
    await expect(put).rejects.toMatchObject(refused);
    expect(await readdir(join(outside, "bucket"))).toEqual(["00000000000001000000.jsonl"]);
    // Objects inside the root still read, and the log itself is untouched.
    expect((await collect(new ObjectStorageEventReader({ store, keyPrefix: "log/" }).events())).length).toBe(6);
  });

  it("the filesystem store refuses a key longer than the filesystem allows as an invalid key, not a store outage", async () => {
    const { store } = await logAt("long-key");
    const key = `log/${"x".repeat(1 << 20)}`;
    const refused = { code: ErrorCodes.objectStorage.keyInvalid, status: "invalid-argument" };
    await expect(store.get(key)).rejects.toMatchObject(refused);
    await expect(store.put(key, new Uint8Array([1]), { contentType: "text/plain" })).rejects.toMatchObject(refused);
  });

  it("keys listed in UTF-8 byte order or in UTF-16 order are both accepted as ascending", async () => {
    const { store } = await logAt("either-order");
    // Beside the segments, keys with U+E000 and U+1F600: UTF-8 bytes put U+E000 first (S3, GCS, Azure), UTF-16 code
    // units the other way round (JavaScript's <). A store may list in either order; neither is a broken listing.
    const extra = ["log/events/\uE000.txt", "log/events/\u{1F600}.txt"];
    for (const order of [extra, [...extra].reverse()]) {
      const listing = async function* (prefix: string): AsyncGenerator<ObjectListEntry> {
        for (const key of [...[1, 3, 5].map(segment), ...order]) if (key.startsWith(prefix)) yield { key };
      };
      const reader = new ObjectStorageEventReader({ store: hostile(store, listing), keyPrefix: "log/" });
      expect((await collect(reader.events())).map((e) => e.sequenceNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    }
  });

  it("a listing that repeats its keys is refused as a store failure by a resume and by a reader", async () => {
    const { store } = await logAt("repeating");
    // The same page again and again, as a looping continuation token gives (finite here so the old code ends).
    const repeating = async function* (prefix: string): AsyncGenerator<ObjectListEntry> {
      for (let round = 0; round < 2_000; round++) {
        for (const n of [1, 3, 5]) if (segment(n).startsWith(prefix)) yield { key: segment(n) };
      }
    };
    const failed = { code: ErrorCodes.objectStorage.storeFailed, metadata: { operation: "list" } };
    await expect(
      ObjectStorageResourceLeaseReplicator.open(hostile(store, repeating), { keyPrefix: "log/" }),
    ).rejects.toMatchObject(failed);
    const reader = new ObjectStorageEventReader({ store: hostile(store, repeating), keyPrefix: "log/" });
    // The tolerant form yields the six events, then stops with the store error instead of 5,998 `order` entries.
    const seen: string[] = [];
    const read = async () => {
      for await (const entry of reader.entries()) seen.push(entry.kind);
    };
    await expect(read()).rejects.toMatchObject(failed);
    expect(seen).toEqual(["event", "event", "event", "event", "event", "event"]);
  });

  it("a listing out of key order is refused rather than read as overlapping segments", async () => {
    const { store } = await logAt("reordered");
    const reversed = async function* (prefix: string): AsyncGenerator<ObjectListEntry> {
      for (const n of [5, 3, 1]) if (segment(n).startsWith(prefix)) yield { key: segment(n) };
    };
    const reader = new ObjectStorageEventReader({ store: hostile(store, reversed), keyPrefix: "log/" });
    await expect(collect(reader.entries())).rejects.toMatchObject({ code: ErrorCodes.objectStorage.storeFailed });
  });

  it("a segment larger than maxSegmentBytes is reported as corrupt (reason size) without being fetched or decoded", async () => {
    const { store } = await logAt("oversized");
    const fetched: string[] = [];
    const sized = async function* (prefix: string, startAfter?: string): AsyncGenerator<ObjectListEntry> {
      for await (const entry of store.list(prefix, startAfter)) {
        yield { key: entry.key, size: entry.key === segment(3) ? 5 * 2 ** 30 : 100 };
      }
    };
    const get = (key: string) => {
      fetched.push(key);
      return store.get(key);
    };
    const reader = new ObjectStorageEventReader({
      store: hostile(store, sized, get),
      keyPrefix: "log/",
      maxSegmentBytes: 4096,
    });
    const entries = await collect(reader.entries());
    expect(entries.map((e) => (e.kind === "corrupt" ? `corrupt:${e.reason}` : e.kind))).toEqual([
      "event",
      "event",
      "corrupt:size",
      "gap",
      "event",
      "event",
    ]);
    expect(fetched).not.toContain(segment(3));
    // A store that lists no size (or lies about it) is caught on the bytes it returns.
    const unsized = new ObjectStorageEventReader({ store, keyPrefix: "log/", maxSegmentBytes: 64 });
    await expect(collect(unsized.events())).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { reason: "size" },
    });
  });

  it("a segment too large to ever decode is a coded corrupt entry by default, not an uncoded string-length crash", async () => {
    const { store } = await logAt("giant");
    // One byte more than the longest string V8 can build: the reader used to try, and threw ERR_STRING_TOO_LONG.
    const giant = new Uint8Array(0x1fffffe8 + 1).fill(0x20);
    const get = (key: string) => (key === segment(5) ? Promise.resolve(giant) : store.get(key));
    const hostileStore = hostile(store, (prefix, startAfter) => store.list(prefix, startAfter), get);
    const entries = await collect(new ObjectStorageEventReader({ store: hostileStore, keyPrefix: "log/" }).entries());
    const corrupt = entries.flatMap((e) => (e.kind === "corrupt" ? [`${e.reason} ${e.key}`] : []));
    // The giant segment is skipped, so the log ends below its checkpoint (events 5-6): reported as a tail loss too.
    expect(corrupt).toEqual([`size ${segment(5)}`, `tail ${segment(5)}`]);
    await expect(ObjectStorageResourceLeaseReplicator.open(hostileStore, { keyPrefix: "log/" })).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { reason: "size", key: segment(5) },
    });
  });
});

describe("object storage reads and writes at the edges of their arguments", () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "omnirelay-edges-"));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  const logAt = async (name: string) => {
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: join(base, name), fsync: false });
    const log = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "log/", maxSegmentEvents: 2 });
    await log.publish(range(1, 6));
    return { store, log };
  };

  it("a checkpoint `from` naming a key outside the prefix, or an impossible sequence, is refused before any read", async () => {
    const { store, log } = await logAt("from");
    await store.put("other/secret.jsonl", new TextEncoder().encode("not yours\n"), { contentType: "text/plain" });
    const fetched: string[] = [];
    const spied = hostile(
      store,
      (prefix, startAfter) => store.list(prefix, startAfter),
      (key) => {
        fetched.push(key);
        return store.get(key);
      },
    );
    const reader = new ObjectStorageEventReader({ store: spied, keyPrefix: "log/" });
    const refused = { code: ErrorCodes.resourceLease.argumentInvalid, metadata: { field: "from" } };
    for (const from of [
      { sequence: 3, key: "other/secret.jsonl" },
      { sequence: 3, key: "log/../other/secret.jsonl" },
      { sequence: Number.NaN, key: segment(3) },
      { sequence: -10, key: segment(3) },
    ]) {
      await expect(collect(reader.entries({ from })), JSON.stringify(from)).rejects.toMatchObject(refused);
    }
    expect(fetched).toEqual([]);
    // A genuine checkpoint still resumes right after its event.
    const resumed = await collect(reader.events({ from: { sequence: 4, key: segment(3) } }));
    expect(resumed.map((e) => e.sequenceNumber)).toEqual([5, 6]);
    await log.close();
  });

  it("read from a sequence number above every safe integer yields nothing, as from one past the end does", async () => {
    const { log } = await logAt("read-past-safe");
    expect(await collect(log.read(7))).toEqual([]);
    for (const from of [2 ** 53, 2 ** 60, Number.POSITIVE_INFINITY]) {
      expect((await collect(log.read(from))).map((e) => e.sequenceNumber)).toEqual([]);
    }
    await log.close();
  });

  it("publishing an event the wire format cannot hold is refused with event_invalid, storing none of the publish", async () => {
    const { store, log } = await logAt("unencodable");
    // A time past the Date range; the second segment of the publish holds it, the first one is fine.
    const events = [...range(7, 8), { ...range(9, 9)[0]!, timestamp: 9e15 }];
    await expect(log.publish(events)).rejects.toMatchObject({
      status: "invalid-argument",
      code: ErrorCodes.replication.eventInvalid,
    });
    expect(log.faulted).toBe(false);
    expect(await log.lastSequence()).toBe(6);
    expect(await store.get(segment(7))).toBeUndefined();
    await log.publish(range(7, 9));
    expect(await log.lastSequence()).toBe(9);
    await log.close();
  });
});

describe("object storage reader and the queue's hash chain", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "omnirelay-chain-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  /**
   * A queue's six Enqueue events (chained by the queue), copied in one publish into segments of two events each
   * (1-2, 3-4, 5-6), as a mirror or a batching replicator stores them.
   */
  const queueLog = async (name: string) => {
    const memory = new InMemoryResourceLeaseEventLog();
    const queue = new ResourceLeaseQueue({ replicator: memory });
    for (const id of ["a", "b", "c", "d", "e", "f"]) {
      await queue.enqueue({ resourceType: "doc", resourceId: `doc-${id}`, partitionKey: "p", payloadEncoding: "json" });
    }
    await queue.close();
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: join(root, name), fsync: false });
    const log = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "log/", maxSegmentEvents: 2 });
    const events = await collect(memory.read(1));
    expect(events.slice(1).every((e) => typeof e.previousHash === "string")).toBe(true);
    await log.publish(events);
    await log.close();
    return store;
  };
  /** Replaces `from` (which must occur) with `to` in the object `key`, as bit rot or an edit in place would. */
  const flip = async (store: FileSystemResourceLeaseObjectStore, key: string, [from, to]: [string, string]) => {
    const text = new TextDecoder().decode(await store.get(key));
    expect(text).toContain(from);
    await writeFile(join(store.rootDirectory, ...key.split("/")), text.replace(from, to));
  };
  const kinds = (entries: ObjectStorageReadEntry[]) =>
    entries.map((e) =>
      e.kind === "event" ? e.event.sequenceNumber : e.kind === "gap" ? "gap" : `corrupt:${e.reason}`,
    );

  it("an intact chained log reads without a chain entry", async () => {
    const store = await queueLog("intact");
    const entries = await collect(new ObjectStorageEventReader({ store, keyPrefix: "log/" }).entries());
    expect(kinds(entries)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("one altered character in an event is reported as a chain break before that event is delivered", async () => {
    const store = await queueLog("flipped-inside");
    // Event 3 is the first line of segment 3; its successor 4 (same segment) vouches for it.
    await flip(store, segment(3), ["doc-c", "doc-x"]);
    const reader = new ObjectStorageEventReader({ store, keyPrefix: "log/" });
    const entries = await collect(reader.entries());
    expect(kinds(entries)).toEqual([1, 2, "corrupt:chain", "gap", 5, 6]);
    expect(entries[2]).toMatchObject({ key: segment(3), line: 1 });
    const delivered = entries.flatMap((e) => (e.kind === "event" ? [e.event.payload?.resourceId] : []));
    expect(delivered).not.toContain("doc-x");
    await expect(collect(reader.events())).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { reason: "chain", key: segment(3), line: "1" },
    });
  });

  it("an altered last event of a segment is caught by the link from the next segment", async () => {
    const store = await queueLog("flipped-edge");
    await flip(store, segment(3), ["doc-d", "doc-y"]);
    const entries = await collect(new ObjectStorageEventReader({ store, keyPrefix: "log/" }).entries());
    // Event 4 was delivered (nothing after it was read yet); segment 5 names the break, and its own links hold, so
    // it is delivered too: the tolerant reader loses nothing, the strict one stops there.
    expect(kinds(entries)).toEqual([1, 2, 3, 4, "corrupt:chain", 5, 6]);
    expect(entries[4]).toMatchObject({ key: segment(5), line: 1 });
  });
});
