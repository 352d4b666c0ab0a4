import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import { ShardedResourceLeaseReplicator } from "@omnirelay/core/replication";
import { eventsOfEveryType } from "@omnirelay/core/testing";
import { decodeReplicationEvent, encodeReplicationEvent, replicationEventJsonSchema } from "@omnirelay/core/wire";
import { Ajv, type ValidateFunction } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import { GOVERNANCE_RECORD_SCHEMA, GovernanceAuditSink, ObjectStorageResourceLeaseReplicator } from "../src/index.js";
import { leaseEvent } from "./events.js";

const schemaPath = join(import.meta.dirname, "..", "..", "..", "docs", "schema", "replication-event.v1.json");

const item = (n: number) => ({
  payload: { resourceType: "invoice", resourceId: `inv-${n}`, partitionKey: "tenant-1", payloadEncoding: "json" },
  sequenceId: n,
  attempt: 2,
  enqueuedAt: 1_700_000_000_000,
  lastError: { message: "boom", code: "worker.crash" },
  lastOwnershipToken: { sequenceId: n, attempt: 1, leaseId: `l-${n}`, fencingToken: 7 },
  availableAt: 1_700_000_005_000,
});

/** One event of every shape the envelope has. */
const samples: ResourceLeaseReplicationEvent[] = [
  {
    sequenceNumber: 1,
    eventType: "Enqueue",
    timestamp: 1_700_000_000_000,
    peerId: "seeder",
    item: item(1),
    metadata: {},
  },
  leaseEvent(2),
  {
    ...leaseEvent(3),
    eventType: "Failed",
    error: { message: "bad input", code: "worker.invalid" },
    metadata: { "failure.requeued": "false" },
  },
  {
    sequenceNumber: 4,
    eventType: "DrainSnapshot",
    timestamp: 1_700_000_000_004,
    items: [item(4), item(5)],
    metadata: { "drain.count": "2" },
  },
  {
    sequenceNumber: 5,
    eventType: "DeadLettered",
    timestamp: 1_700_000_000_005,
    item: item(6),
    error: { message: "x" },
    metadata: { "deadletter.reason": "attempts" },
  },
];

describe("replication-event.v1.json", () => {
  let validate: ValidateFunction;
  let root: string;
  beforeAll(async () => {
    const ajv = new Ajv({ strict: true, allErrors: true, validateFormats: false });
    validate = ajv.compile(JSON.parse(await readFile(schemaPath, "utf8")));
    root = await mkdtemp(join(tmpdir(), "omnirelay-schema-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("accepts every envelope encodeReplicationEvent produces, and those decode back to the same event", () => {
    // Core's fixture has every event type with every field its type carries, at the edges of what the queue accepts.
    for (const event of [...samples, ...eventsOfEveryType()]) {
      const json = JSON.parse(JSON.stringify(encodeReplicationEvent(event)));
      expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
      expect(encodeReplicationEvent(decodeReplicationEvent(json))).toEqual(json);
    }
  });

  it("the copy shipped in the package is the published schema, and both are what core's description generates", async () => {
    const shipped = await readFile(join(import.meta.dirname, "..", "schema", "replication-event.v1.json"), "utf8");
    expect(shipped).toBe(await readFile(schemaPath, "utf8"));
    // After a message changes: pnpm --filter @omnirelay/replicator-object-storage schema
    expect(JSON.parse(shipped)).toEqual(replicationEventJsonSchema());
  });

  it("rejects envelopes that break the contract", () => {
    const good = JSON.parse(JSON.stringify(encodeReplicationEvent(leaseEvent(9))));
    const { sequenceNumber: _drop, ...noSequence } = good;
    for (const bad of [
      noSequence,
      { ...good, eventType: "Teleported" },
      { ...good, sequenceNumber: 0 },
      { ...good, timestamp: 1_700_000_000_000 },
      { ...good, metadata: { n: 1 } },
      { ...good, payload: { ...good.payload, body: "not base64!" } },
      { ...good, surprise: true },
    ]) {
      expect(validate(bad)).toBe(false);
    }
  });

  it("every line the replicator stores is a valid envelope", async () => {
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root });
    const replicator = new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "s/" });
    const events = eventsOfEveryType();
    await replicator.publish(events);
    await replicator.close();
    const bytes = await store.get("s/events/00000000000000/00000000000000000001.jsonl");
    const lines = new TextDecoder().decode(bytes).trim().split("\n");
    expect(lines).toHaveLength(events.length);
    for (const line of lines) expect(validate(JSON.parse(line)), line).toBe(true);
  });
});

describe("GovernanceAuditSink", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "omnirelay-governance-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const linesOf = async (store: FileSystemResourceLeaseObjectStore, key: string) =>
    new TextDecoder()
      .decode(await store.get(key))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));

  it("writes one JSON line per touched resource with shard, owner, principal and effect id", async () => {
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root });
    const sink = new GovernanceAuditSink(store, { keyPrefix: "gov/billing/", deterministic: { changeId: "billing" } });
    const sharded = new ShardedResourceLeaseReplicator({ inner: sink, shardId: "billing" });
    await sharded.publish(samples.slice(0, 4));
    await sink.close();
    const records = await linesOf(store, "gov/billing/events/00000000000000/00000000000000000001.jsonl");
    expect(records.map((r) => [r.sequenceNumber, r.resourceId])).toEqual([
      [1, "inv-1"],
      [2, "inv-2"],
      [3, "inv-3"],
      [4, "inv-4"],
      [4, "inv-5"],
    ]);
    expect(records[1]).toEqual({
      schema: GOVERNANCE_RECORD_SCHEMA,
      sequenceNumber: 2,
      eventType: "LeaseGranted",
      timestamp: "2023-11-14T22:13:20.002Z",
      shardId: "billing",
      resourceType: "invoice",
      resourceId: "inv-2",
      partitionKey: "tenant-1",
      ownerPeerId: "worker-a",
      principal: "spiffe://mesh/worker-a",
      effectId: "billing/seq/2",
      leaseId: "lease-2",
      fencingToken: 2,
      errorCode: null,
    });
    expect(records[2]).toMatchObject({ eventType: "Failed", errorCode: "worker.invalid" });
    expect(records[3]).toMatchObject({ eventType: "DrainSnapshot", ownerPeerId: null, principal: null });
  });

  it("resumes after a restart and refuses to rewrite audited history", async () => {
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root });
    const sink = new GovernanceAuditSink(store, { keyPrefix: "gov/resume/" });
    await sink.publish(samples.slice(0, 2));
    await sink.close();
    const again = new GovernanceAuditSink(store, { keyPrefix: "gov/resume/" });
    expect(await again.lastSequence()).toBe(2);
    await expect(again.apply(samples[0] as ResourceLeaseReplicationEvent)).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.sequenceGap,
    });
    await again.apply(samples[2] as ResourceLeaseReplicationEvent);
    const records = await linesOf(store, "gov/resume/events/00000000000000/00000000000000000003.jsonl");
    expect(records).toMatchObject([{ sequenceNumber: 3, effectId: "resourcelease.replication/seq/3" }]);
    await again.close();
  });
});
