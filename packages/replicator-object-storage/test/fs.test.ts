import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, ResourceLeaseQueue } from "@omnirelay/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import { ObjectStorageEventReader, ObjectStorageResourceLeaseReplicator } from "../src/index.js";
import { describeBackend } from "./backend-suite.js";
import { collect, leaseEvent, range } from "./events.js";

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
      "corrupt",
    ]);
    expect(entries[2]).toMatchObject({ kind: "corrupt", reason: "json", line: 1 });
    expect(entries[3]).toMatchObject({ kind: "corrupt", reason: "empty" });
    // The checkpoint written by close() says 6 was stored (in segment 5); the readable log ends at 2.
    expect(entries[4]).toMatchObject({
      kind: "corrupt",
      reason: "tail",
      key: "log/events/00000000000000/00000000000000000005.jsonl",
      fromSequence: 3,
      toSequence: 6,
    });

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
  it("refuses to open, read or publish when the newest segment lost events the checkpoint acknowledged", async () => {
    const store = storeAt("truncated-tail");
    const writer = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "t/" });
    await writer.publish(range(1, 10));
    await writer.close(); // checkpoint.json: lastSequence 10 in the one segment
    const key = "t/events/00000000000000/00000000000000000001.jsonl";
    const file = join(root, "truncated-tail", ...key.split("/"));
    const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
    await writeFile(file, `${lines.slice(0, 7).join("\n")}\n`); // cut at a line boundary: 8..10 are gone

    const tail = {
      status: "data-loss",
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { key, reason: "tail", sequence: "8", lastSequence: "7", checkpointSequence: "10" },
    };
    await expect(ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "t/" })).rejects.toMatchObject(tail);
    const lazy = new ObjectStorageResourceLeaseReplicator(storeAt("truncated-tail"), { keyPrefix: "t/" });
    await expect(collect(lazy.read(1))).rejects.toMatchObject(tail);
    await expect(lazy.lastSequence()).rejects.toMatchObject(tail);
    // Another event 8 must not take the place of the acknowledged one.
    await expect(lazy.publish([leaseEvent(8, { peerId: "someone-else" })])).rejects.toMatchObject(tail);
    await expect(lazy.publish(range(11, 11))).rejects.toMatchObject(tail);
    expect(await readdir(join(root, "truncated-tail", "t", "events", "00000000000000"))).toEqual([
      "00000000000000000001.jsonl",
    ]);
    await lazy.close();

    const entries = await collect(new ObjectStorageEventReader({ store, keyPrefix: "t/" }).entries());
    expect(entries.map((e) => (e.kind === "event" ? e.event.sequenceNumber : e.kind))).toEqual([
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      "corrupt",
    ]);
    expect(entries.at(-1)).toMatchObject({ kind: "corrupt", key, reason: "tail", fromSequence: 8, toSequence: 10 });
  });

  it("resumes from a checkpoint behind the segments (a writer killed before it stored a newer one)", async () => {
    const store = storeAt("stale-checkpoint");
    const options = { keyPrefix: "s/", maxSegmentEvents: 2, checkpointEverySegments: 2 };
    const killed = await ObjectStorageResourceLeaseReplicator.open(store, options);
    await killed.publish(range(1, 4)); // two segments: checkpoint at 4
    await killed.publish(range(5, 5)); // one more segment, no checkpoint yet; never closed, as after kill -9
    const reopened = await ObjectStorageResourceLeaseReplicator.open(storeAt("stale-checkpoint"), options);
    expect(await reopened.lastSequence()).toBe(5);
    expect((await collect(reopened.read(1))).map((e) => e.sequenceNumber)).toEqual([1, 2, 3, 4, 5]);
    await reopened.publish(range(6, 6));
    await reopened.close();
  });

  it("reports bytes that are not UTF-8 as a corrupt segment naming the line, and keeps valid non-ASCII text", async () => {
    const store = storeAt("utf8");
    const writer = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "u/", maxSegmentEvents: 5 });
    const text = (n: number) => `inv-${n}-äß€😀`;
    const events = range(1, 10).map((e) => ({ ...e, payload: { ...e.payload!, resourceId: text(e.sequenceNumber) } }));
    await writer.publish(events);
    await writer.close();
    const read = await collect(writer.read(1));
    expect(read.map((e) => e.payload?.resourceId)).toEqual(events.map((e) => text(e.sequenceNumber)));

    // One byte inside a JSON string of line 3 of the first segment becomes 0xFF (never valid in UTF-8).
    const key = "u/events/00000000000000/00000000000000000001.jsonl";
    const file = join(root, "utf8", ...key.split("/"));
    const bytes = await readFile(file);
    const at = bytes.indexOf(Buffer.from(`"resourceId":"inv-3`)) + '"resourceId":"i'.length;
    expect(at).toBeGreaterThan(20);
    bytes[at] = 0xff;
    await writeFile(file, bytes);

    const entries = await collect(new ObjectStorageEventReader({ store, keyPrefix: "u/" }).entries());
    expect(entries[0]).toMatchObject({ kind: "corrupt", key, reason: "encoding", line: 3 });
    const reopened = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "u/" });
    await expect(collect(reopened.read(1))).rejects.toMatchObject({
      status: "data-loss",
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { key, reason: "encoding", line: "3" },
    });
    await reopened.close();

    // In the newest segment (events 6..10): damage in a middle line is the readers' to report, and the writer still
    // resumes after it; damage in its last line, the one resuming relies on, makes the writer refuse to open.
    const newest = "u/events/00000000000000/00000000000000000006.jsonl";
    const newestFile = join(root, "utf8", ...newest.split("/"));
    const damage = async (n: number) => {
      const segment = await readFile(newestFile);
      segment[segment.indexOf(Buffer.from(`inv-${n}-äß`)) + `inv-${n}-`.length] = 0xc0; // an overlong lead byte
      await writeFile(newestFile, segment);
    };
    await damage(8);
    const resumed = await ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "u/" });
    expect(await resumed.lastSequence()).toBe(10);
    await resumed.close();
    await damage(10);
    await expect(ObjectStorageResourceLeaseReplicator.open(store, { keyPrefix: "u/" })).rejects.toMatchObject({
      status: "data-loss",
      code: ErrorCodes.objectStorage.corrupt,
      metadata: { key: newest, reason: "encoding", line: "5" },
    });
  });
});
