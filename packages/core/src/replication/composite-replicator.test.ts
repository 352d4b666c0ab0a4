import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicator } from "../contracts/events.js";
import { CompositeResourceLeaseReplicator } from "./composite-replicator.js";
import { InMemoryResourceLeaseEventLog } from "./in-memory-event-log.js";
import { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";
import { deferred, flush, makeEvent } from "./test-fixtures.js";

describe("CompositeResourceLeaseReplicator", () => {
  it("publishes the same events, with the same sequence numbers, to every replicator", async () => {
    const a = new InMemoryResourceLeaseEventLog();
    const b = new InMemoryResourceLeaseEventLog();
    const composite = new CompositeResourceLeaseReplicator({ replicators: [a, b] });
    await composite.publish([makeEvent(1), makeEvent(2)]);
    await composite.publish([makeEvent(3)]);
    expect(a.snapshot().map((e) => e.sequenceNumber)).toEqual([1, 2, 3]);
    expect(b.snapshot()).toEqual(a.snapshot());
  });

  it("keeps per-replicator order for overlapping publishes", async () => {
    const gate = deferred();
    const seen: number[] = [];
    const slow = new InMemoryResourceLeaseReplicator({
      sinks: [
        {
          async apply(event) {
            if (event.sequenceNumber === 1) await gate.promise;
            seen.push(event.sequenceNumber);
          },
        },
      ],
    });
    const log = new InMemoryResourceLeaseEventLog();
    const composite = new CompositeResourceLeaseReplicator({ replicators: [slow, log] });
    const first = composite.publish([makeEvent(1)]);
    const second = composite.publish([makeEvent(2)]);
    await flush();
    expect(log.size).toBe(2);
    expect(seen).toEqual([]);
    gate.resolve();
    await Promise.all([first, second]);
    expect(seen).toEqual([1, 2]);
  });

  it("rejects with the failing replicator's index while the others keep the events", async () => {
    const ok = new InMemoryResourceLeaseEventLog();
    const broken: ResourceLeaseReplicator = {
      publish: () => {
        throw new Error("hub unreachable");
      },
    };
    const composite = new CompositeResourceLeaseReplicator({ replicators: [ok, broken] });
    await expect(composite.publish([makeEvent(1)])).rejects.toMatchObject({
      status: "unavailable",
      code: "resourcelease.replication.failed",
      metadata: {
        "replication.stage": "composite.publish",
        "replication.replicator": "1",
        "replication.failed_count": "1",
      },
    });
    expect(ok.size).toBe(1);
  });

  it("requires at least one replicator", () => {
    expect(() => new CompositeResourceLeaseReplicator({ replicators: [] })).toThrowError(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "replicators" } }),
    );
    expect(() => new CompositeResourceLeaseReplicator({ replicators: [{} as ResourceLeaseReplicator] })).toThrowError(
      expect.objectContaining({ metadata: { option: "replicators" } }),
    );
  });
});
