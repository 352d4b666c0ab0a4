import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicator } from "../contracts/events.js";
import { InMemoryResourceLeaseEventLog } from "./in-memory-event-log.js";
import { ShardedResourceLeaseReplicator } from "./sharded-replicator.js";
import { makeEvent } from "./test-fixtures.js";

describe("ShardedResourceLeaseReplicator", () => {
  it("forwards copies tagged with the trimmed shard id and the same sequence numbers", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    const sharded = new ShardedResourceLeaseReplicator({ inner: log, shardId: "  billing " });
    expect(sharded.shardId).toBe("billing");
    const events = [makeEvent(7), makeEvent(8, "LeaseGranted")];
    await sharded.publish(events);
    const stored = log.snapshot();
    expect(stored.map((e) => e.sequenceNumber)).toEqual([7, 8]);
    expect(stored.map((e) => e.eventType)).toEqual(["Enqueue", "LeaseGranted"]);
    expect(stored[0]?.metadata).toEqual({ "queue.pending": "7", "shard.id": "billing" });
    expect(stored[0]?.timestamp).toBe(events[0]?.timestamp);
    // The caller's events are untouched.
    expect(events[0]?.metadata).toEqual({ "queue.pending": "7" });
  });

  it("rejects a blank shard id or a missing inner replicator", () => {
    const inner = new InMemoryResourceLeaseEventLog();
    for (const shardId of ["", "   ", undefined as unknown as string]) {
      expect(() => new ShardedResourceLeaseReplicator({ inner, shardId })).toThrowError(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "shardId" } }),
      );
    }
    expect(
      () => new ShardedResourceLeaseReplicator({ inner: {} as ResourceLeaseReplicator, shardId: "a" }),
    ).toThrowError(expect.objectContaining({ metadata: { option: "inner" } }));
  });

  it("adds shard metadata to an inner failure", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    const sharded = new ShardedResourceLeaseReplicator({ inner: log, shardId: "s1" });
    await sharded.publish([makeEvent(2)]);
    await expect(sharded.publish([makeEvent(1)])).rejects.toMatchObject({
      code: "resourcelease.replication.out_of_order",
      metadata: { "replication.stage": "shard.forward", "replication.shard": "s1", "replication.sequence": "1" },
    });
  });
});
