import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, ResourceLeaseQueue } from "@omnirelay/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import { ObjectStorageEventReader, ObjectStorageResourceLeaseReplicator } from "../src/index.js";
import { describeBackend } from "./backend-suite.js";
import { collect, range } from "./events.js";

describeBackend("filesystem", async () => {
  const root = await mkdtemp(join(tmpdir(), "omnirelay-fs-store-"));
  return {
    newStore: () => new FileSystemResourceLeaseObjectStore({ rootDirectory: root }),
    close: () => rm(root, { recursive: true, force: true }),
  };
});

describe("filesystem store and reader specifics", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "omnirelay-fs-reader-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const storeAt = (name: string) => new FileSystemResourceLeaseObjectStore({ rootDirectory: join(root, name) });

  it("refuses keys that escape the root and leaves no temp files behind", async () => {
    const store = storeAt("keys");
    for (const key of ["../x", "a/../../x", "/abs", "a//b", "a/.tmp-1"]) {
      await expect(store.put(key, new Uint8Array(), { contentType: "text/plain" })).rejects.toMatchObject({
        code: ErrorCodes.objectStorage.keyInvalid,
      });
    }
    await store.put("a/b.json", new Uint8Array([1]), { contentType: "text/plain", ifNoneMatch: "*" });
    await expect(
      store.put("a/b.json", new Uint8Array([2]), { contentType: "text/plain", ifNoneMatch: "*" }),
    ).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.exists,
    });
    expect(await readdir(join(root, "keys", "a"))).toEqual(["b.json"]);
  });

  it("uses the default prefix 'resourcelease/' and resumes after restart (the original overwrote here)", async () => {
    const store = storeAt("default-prefix");
    const first = new ObjectStorageResourceLeaseReplicator(store);
    await first.publish(range(1, 2));
    await first.close();
    const second = new ObjectStorageResourceLeaseReplicator(storeAt("default-prefix"));
    expect(await second.lastSequence()).toBe(2);
    await expect(second.publish(range(1, 1))).rejects.toMatchObject({ code: ErrorCodes.objectStorage.sequenceGap });
    await second.publish(range(3, 3));
    expect((await collect(second.read(0))).map((e) => e.sequenceNumber)).toEqual([1, 2, 3]);
    await second.close();
  });

  it("reports gaps and corrupt segments as typed entries, and the strict reader throws data-loss", async () => {
    const store = storeAt("corrupt");
    const replicator = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "log/", maxSegmentEvents: 2 });
    await replicator.publish(range(1, 6));
    await replicator.close();
    const segment = (n: number) =>
      join(root, "corrupt", "log", "events", "00000000000000", `${String(n).padStart(20, "0")}.jsonl`);
    await writeFile(segment(3), "{not json\n");
    await rm(segment(5));
    await writeFile(segment(8), "");
    const reader = new ObjectStorageEventReader({ store, keyPrefix: "log/" });
    const entries = await collect(reader.entries());
    expect(entries.map((e) => (e.kind === "event" ? e.event.sequenceNumber : e.kind))).toEqual([
      1,
      2,
      "corrupt",
      "corrupt",
    ]);
    expect(entries[2]).toMatchObject({ kind: "corrupt", reason: "json", line: 1 });
    expect(entries[3]).toMatchObject({ kind: "corrupt", reason: "empty" });

    await writeFile(segment(10), `${JSON.stringify({ sequenceNumber: 10, eventType: "Enqueue", timestamp: 1 })}\n`);
    const withGap = await collect(reader.entries({ from: 2 }));
    expect(withGap.map((e) => e.kind)).toEqual(["event", "corrupt", "corrupt", "gap", "event"]);
    expect(withGap[3]).toMatchObject({ kind: "gap", fromSequence: 3, toSequence: 9 });
    await expect(collect(reader.events())).rejects.toMatchObject({
      status: "data-loss",
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { reason: "json" },
    });
  });

  it("resumes reading from a checkpoint without re-reading earlier segments", async () => {
    const store = storeAt("checkpoint");
    const replicator = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "cp/", maxSegmentEvents: 3 });
    await replicator.publish(range(1, 5));
    const reader = new ObjectStorageEventReader({ store, keyPrefix: "cp/" });
    const firstPass = await collect(reader.entries());
    const last = firstPass.at(-1);
    if (last?.kind !== "event") throw new Error("expected an event");
    expect(last.checkpoint).toEqual({ sequence: 5, key: "cp/events/00000000000000/00000000000000000004.jsonl" });
    await replicator.publish(range(6, 7));
    const next = await collect(reader.entries({ from: last.checkpoint }));
    expect(next.map((e) => (e.kind === "event" ? e.event.sequenceNumber : e.kind))).toEqual([6, 7]);
    await replicator.close();
    await expect(replicator.publish(range(8, 8))).rejects.toMatchObject({ code: ErrorCodes.objectStorage.closed });
  });

  it("restores a queue on a new node from the stream and keeps appending to it", async () => {
    const store = storeAt("restore");
    const log = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "q/" });
    const queue = new ResourceLeaseQueue({ replicator: log });
    const payload = (id: string) => ({
      resourceType: "doc",
      resourceId: id,
      partitionKey: "p",
      payloadEncoding: "json",
    });
    await queue.enqueue(payload("a"), { peerId: "seeder" });
    await queue.enqueue(payload("b"));
    await queue.enqueue(payload("c"));
    const [grant] = await queue.lease({ peerId: "worker-a" });
    if (!grant) throw new Error("expected a grant");
    await queue.complete(grant.ownershipToken);
    const before = queue.stats();
    await queue.close();
    await log.close();

    const reopened = await ObjectStorageResourceLeaseReplicator.open(storeAt("restore"), { keyPrefix: "q/" });
    expect(await reopened.lastSequence()).toBe(before.lastEventSequence);
    const rebuilt = await ResourceLeaseQueue.rebuild(reopened.read(1), { replicator: reopened });
    expect(rebuilt.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
    await rebuilt.enqueue(payload("d"));
    const events = await collect(reopened.read(1));
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)).toMatchObject({ eventType: "Enqueue", sequenceNumber: before.lastEventSequence + 1 });
    await rebuilt.close();
    await reopened.close();
  });

  it("refuses to open when the newest segment is unreadable, rather than guessing and rewriting", async () => {
    const store = storeAt("bad-tail");
    const replicator = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "t/", checkpointEverySegments: 1 });
    await replicator.publish(range(1, 2));
    await replicator.close();
    await writeFile(join(root, "bad-tail", "t", "events", "00000000000000", "00000000000000000003.jsonl"), "garbage");
    await expect(ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "t/" })).rejects.toMatchObject({
      status: "data-loss",
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { reason: "tail" },
    });
  });
});
