import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "../contracts/events.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";
import { type Deferred, deferred, flush, makeEvent } from "./test-fixtures.js";

/** A sink that records sequence numbers; each apply waits for the gate registered for its sequence, if any. */
function recordingSink(gates = new Map<number, Deferred<void>>()) {
  const seen: number[] = [];
  const started: number[] = [];
  const sink: ResourceLeaseReplicationSink = {
    async apply(event) {
      started.push(event.sequenceNumber);
      await gates.get(event.sequenceNumber)?.promise;
      seen.push(event.sequenceNumber);
    },
  };
  return { sink, seen, started, gates };
}

async function rejection(promise: Promise<unknown>): Promise<OmniRelayError> {
  try {
    await promise;
  } catch (error) {
    return error as OmniRelayError;
  }
  throw new Error("expected a rejection");
}

describe("InMemoryResourceLeaseReplicator", () => {
  it("delivers concurrent publishes in sequence order even when sinks are slow", async () => {
    const gate1 = deferred();
    const a = recordingSink(new Map([[1, gate1]]));
    const b = recordingSink();
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [a.sink, b.sink] });
    const first = replicator.publish([makeEvent(1)]);
    const second = replicator.publish([makeEvent(2), makeEvent(3)]);
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    await flush();
    // Event 1 is stuck in sink a: nothing later may reach any sink, and the later publish is not done.
    expect(a.started).toEqual([1]);
    expect(b.seen).toEqual([1]);
    expect(secondDone).toBe(false);
    gate1.resolve();
    await Promise.all([first, second]);
    expect(a.seen).toEqual([1, 2, 3]);
    expect(b.seen).toEqual([1, 2, 3]);
  });

  it("resolves a publish only after every sink applied its events", async () => {
    const gate = deferred();
    const sink = recordingSink(new Map([[1, gate]]));
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [sink.sink] });
    let done = false;
    const publish = replicator.publish([makeEvent(1)]).then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(false);
    gate.resolve();
    await publish;
    expect(done).toBe(true);
    expect(sink.seen).toEqual([1]);
  });

  it("forwards events unchanged (no renumbering, same objects)", async () => {
    const received: ResourceLeaseReplicationEvent[] = [];
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [{ apply: async (e) => void received.push(e) }] });
    const events = [makeEvent(5), makeEvent(9)];
    await replicator.publish(events);
    expect(received[0]).toBe(events[0]);
    expect(received[1]).toBe(events[1]);
    expect(replicator.lastSequence).toBe(9);
  });

  it("rejects sequence numbers that do not increase, delivering nothing from that batch", async () => {
    const sink = recordingSink();
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [sink.sink] });
    await replicator.publish([makeEvent(2)]);
    const stale = await rejection(replicator.publish([makeEvent(3), makeEvent(2)]));
    expect(stale.code).toBe("resourcelease.replication.out_of_order");
    expect(stale.status).toBe("failed-precondition");
    expect(stale.metadata).toMatchObject({ "replication.sequence": "2", "replication.last": "3" });
    const duplicate = await rejection(replicator.publish([makeEvent(2)]));
    expect(duplicate.code).toBe("resourcelease.replication.out_of_order");
    const zero = await rejection(replicator.publish([makeEvent(0)]));
    expect(zero.code).toBe("resourcelease.replication.event_invalid");
    await replicator.publish([makeEvent(3)]);
    expect(sink.seen).toEqual([2, 3]);
  });

  it("rejects on a sink failure with stage metadata and keeps delivering later publishes", async () => {
    const good = recordingSink();
    const failing: ResourceLeaseReplicationSink = {
      async apply(event) {
        if (event.sequenceNumber === 2) throw new Error("disk full");
      },
    };
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [good.sink, failing] });
    const failed = replicator.publish([makeEvent(1), makeEvent(2), makeEvent(3)]);
    const later = replicator.publish([makeEvent(4)]);
    const error = await rejection(failed);
    expect(error.status).toBe("unavailable");
    expect(error.code).toBe("resourcelease.replication.failed");
    expect(error.metadata).toMatchObject({
      "replication.stage": "inmemory.sink",
      "replication.sequence": "2",
      "replication.sink": "1",
    });
    expect((error.cause as Error).message).toBe("disk full");
    await later;
    // Event 3 (after the failure in the same batch) was never delivered; event 4 was.
    expect(good.seen).toEqual([1, 2, 4]);
  });

  it("keeps the status and code of an OmniRelayError from a sink and survives synchronous throws", async () => {
    const replicator = new InMemoryResourceLeaseReplicator({
      sinks: [
        {
          apply(event) {
            if (event.sequenceNumber === 1)
              throw new OmniRelayError({ status: "permission-denied", code: "x.denied", message: "no" });
            return Promise.resolve();
          },
        },
      ],
    });
    const error = await rejection(replicator.publish([makeEvent(1)]));
    expect(error.code).toBe("x.denied");
    expect(error.status).toBe("permission-denied");
    expect(error.metadata["replication.stage"]).toBe("inmemory.sink");
    await expect(replicator.publish([makeEvent(2)])).resolves.toBeUndefined();
  });

  it("registers and unregisters sinks at runtime and refuses duplicates", async () => {
    const first = recordingSink();
    const replicator = new InMemoryResourceLeaseReplicator();
    await replicator.publish([makeEvent(1)]);
    const unregister = replicator.registerSink(first.sink);
    expect(() => replicator.registerSink(first.sink)).toThrowError(
      expect.objectContaining({ code: "resourcelease.replication.sink_duplicate", status: "already-exists" }),
    );
    await replicator.publish([makeEvent(2)]);
    unregister();
    unregister();
    await replicator.publish([makeEvent(3)]);
    expect(first.seen).toEqual([2]);
  });

  it("does not deliver when the signal is already aborted", async () => {
    const sink = recordingSink();
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [sink.sink] });
    const error = await rejection(replicator.publish([makeEvent(1)], { signal: AbortSignal.abort() }));
    expect(error.status).toBe("cancelled");
    expect(error.code).toBe("resourcelease.cancelled");
    expect(sink.started).toEqual([]);
  });

  it("rejects sinks without apply", () => {
    expect(
      () => new InMemoryResourceLeaseReplicator({ sinks: [{} as unknown as ResourceLeaseReplicationSink] }),
    ).toThrowError(expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "sinks" } }));
  });
});
