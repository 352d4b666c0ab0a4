import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ErrorCodes,
  isOmniRelayError,
  type OmniRelayError,
  ResourceLeaseQueue,
  type ResourceLeaseQueueStats,
} from "@omnirelay/core";
import { CompositeResourceLeaseReplicator } from "@omnirelay/core/replication";
import { afterEach, describe, expect, it } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import { ObjectStorageEventReader, ObjectStorageResourceLeaseReplicator } from "../src/index.js";

// Corruption drill for the object-storage log: a queue writes its events to two buckets (the primary and a mirror in
// another place); then a segment of the primary is damaged, removed, or its newest one emptied. A node rebuilding
// from the primary must refuse with `resourcelease.objectstorage.corrupt` naming the segment — never start with part
// of the history — and the repair (put the segment back from the mirror) must give back exactly the queue that ran.

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

const PREFIX = "q/";
const options = { keyPrefix: PREFIX, maxSegmentEvents: 8 };
const item = (id: string) => ({ resourceType: "doc", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

interface Buckets {
  readonly primary: string;
  readonly mirror: string;
  /** What the running queue reported last. */
  readonly live: ResourceLeaseQueueStats;
  /** Segment files of the primary, oldest first. */
  readonly segments: string[];
}

const store = (root: string) => new FileSystemResourceLeaseObjectStore({ rootDirectory: root });

/** Runs a queue on both buckets: 60 enqueues, 40 leases, 25 completions, 5 failures. */
async function writeBoth(): Promise<Buckets> {
  const [primary, mirror] = [
    await mkdtemp(join(tmpdir(), "omnirelay-os-primary-")),
    await mkdtemp(join(tmpdir(), "omnirelay-os-mirror-")),
  ];
  roots.push(primary, mirror);
  const logs = [
    await ObjectStorageResourceLeaseReplicator.open(store(primary), options),
    await ObjectStorageResourceLeaseReplicator.open(store(mirror), options),
  ];
  const queue = new ResourceLeaseQueue({ replicator: new CompositeResourceLeaseReplicator({ replicators: logs }) });
  for (let i = 0; i < 60; i++) await queue.enqueue(item(`doc-${i}`));
  const grants = await queue.lease({ maxItems: 40, peerId: "w" });
  for (const g of grants.slice(0, 25)) await queue.complete(g.ownershipToken);
  for (const g of grants.slice(25, 30)) await queue.fail(g.ownershipToken, { requeue: false });
  const live = queue.stats();
  await queue.close();
  for (const log of logs) await log.close();
  const dir = join(primary, "q", "events", "00000000000000");
  const segments = (await readdir(dir)).sort().map((name) => join(dir, name));
  return { primary, mirror, live, segments };
}

/** Rebuilds a queue from the primary bucket (as a new node would), or returns why it refused. */
async function rebuild(buckets: Buckets): Promise<ResourceLeaseQueue | OmniRelayError> {
  try {
    const log = await ObjectStorageResourceLeaseReplicator.open(store(buckets.primary), options);
    return await ResourceLeaseQueue.rebuild(log.read(1), { replicator: log }, { activeLeases: "keep" });
  } catch (error) {
    if (isOmniRelayError(error)) return error;
    throw error;
  }
}

/** The repair: every segment the reader reports corrupt or missing is put back from the mirror, byte for byte. */
async function repairFromMirror(buckets: Buckets): Promise<string[]> {
  const primary = store(buckets.primary);
  const mirror = store(buckets.mirror);
  const repaired: string[] = [];
  const reader = new ObjectStorageEventReader({ store: primary, keyPrefix: PREFIX });
  const bad = new Set<string>();
  for await (const entry of reader.entries()) if (entry.kind !== "event") bad.add(entry.key);
  // A missing segment shows as a gap at the next one: every key the mirror holds and the primary lacks is missing.
  for await (const entry of mirror.list(`${PREFIX}events/`)) {
    if ((await primary.get(entry.key)) === undefined) bad.add(entry.key);
  }
  for (const key of [...bad].sort()) {
    const bytes = await mirror.get(key);
    if (bytes === undefined) continue; // not a segment the mirror has: nothing to restore it from
    await primary.put(key, bytes, { contentType: "application/x-ndjson" });
    repaired.push(key);
  }
  return repaired;
}

async function expectRepaired(buckets: Buckets): Promise<void> {
  const repaired = await repairFromMirror(buckets);
  expect(repaired.length).toBeGreaterThan(0);
  const rebuilt = await rebuild(buckets);
  if (isOmniRelayError(rebuilt)) throw rebuilt;
  const { pendingCount, activeLeaseCount, deadLetterCount, lastEventSequence } = buckets.live;
  expect(rebuilt.stats()).toMatchObject({ pendingCount, activeLeaseCount, deadLetterCount, lastEventSequence });
  await rebuilt.close();
}

describe("object-storage corruption drill: a damaged bucket is refused, and repaired from the mirror", () => {
  it("a damaged segment in the middle: data-loss with its key and reason, then restored from the mirror", async () => {
    const buckets = await writeBoth();
    expect(buckets.segments.length).toBeGreaterThan(6);
    const victim = buckets.segments[3]!;
    const bytes = await readFile(victim);
    bytes.fill(0x7b, 10, 40); // '{' over part of the first event: not JSON any more
    await writeFile(victim, bytes);
    const refused = await rebuild(buckets);
    expect(isOmniRelayError(refused) && refused.code).toBe(ErrorCodes.objectStorage.corrupt);
    expect((refused as OmniRelayError).status).toBe("data-loss");
    expect((refused as OmniRelayError).metadata).toMatchObject({ reason: "json" });
    expect(victim.endsWith((refused as OmniRelayError).metadata.key!.split("/").at(-1)!)).toBe(true);
    await expectRepaired(buckets);
  });

  it("a missing segment: refused as a gap, never replayed around; restored from the mirror", async () => {
    const buckets = await writeBoth();
    await rm(buckets.segments[2]!);
    const refused = await rebuild(buckets);
    expect(isOmniRelayError(refused) && refused.code).toBe(ErrorCodes.objectStorage.corrupt);
    expect((refused as OmniRelayError).metadata).toMatchObject({ reason: "gap" });
    await expectRepaired(buckets);
  });

  it("the newest segment emptied: the log refuses to open (it would number again over it); restored from the mirror", async () => {
    const buckets = await writeBoth();
    await truncate(buckets.segments.at(-1)!, 0);
    const refused = await rebuild(buckets);
    expect(isOmniRelayError(refused) && refused.code).toBe(ErrorCodes.objectStorage.corrupt);
    expect((refused as OmniRelayError).metadata).toMatchObject({ reason: "tail" });
    await expectRepaired(buckets);
  });
});
