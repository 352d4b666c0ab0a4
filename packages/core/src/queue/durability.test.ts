import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { item, rejection } from "./test-helpers.js";

describe("durable-before-ack", () => {
  it("a call resolves only after its events were published, and a failed publish faults the queue", async () => {
    const published: number[] = [];
    let release!: () => void;
    let failNext = false;
    const queue = new ResourceLeaseQueue({
      replicator: {
        async publish(events) {
          if (failNext) throw new Error("disk full");
          await new Promise<void>((r) => {
            release = r;
          });
          published.push(...events.map((e) => e.sequenceNumber));
        },
      },
    });
    let resolved = false;
    const p = queue.enqueue(item(1)).then(() => {
      resolved = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(false);
    release();
    await p;
    expect(published).toEqual([1]);
    failNext = true;
    const err = await rejection(queue.enqueue(item(2)));
    expect(err.status).toBe("unavailable");
    expect(err.code).toBe(ErrorCodes.replication.failed);
    expect(queue.stats().state).toBe("faulted");
    expect((await rejection(queue.lease())).code).toBe(ErrorCodes.replication.failed);
    // A fault is not a lifecycle state: the queue runs (refusing work) until closed, and says what faulted it.
    expect(queue.state).toBe("running");
    expect(queue.fault).toMatchObject({ status: "unavailable", code: ErrorCodes.replication.failed });
    await queue.close();
    expect(queue.state).toBe("stopped");
    expect(queue.stats().state).toBe("closed");
    expect(queue.fault?.code).toBe(ErrorCodes.replication.failed);
  });

  it("is running from construction until close(), and its drain mode is not a lifecycle state", async () => {
    const queue = new ResourceLeaseQueue();
    expect(queue.state).toBe("running");
    expect(queue.fault).toBeUndefined();
    await queue.drain();
    expect(queue.stats().state).toBe("draining");
    expect(queue.state).toBe("running");
    await queue.close();
    await queue.close();
    expect(queue.state).toBe("stopped");
    expect(queue.stats().state).toBe("closed");
  });
});

describe("a lease whose caller went away while it was committed", () => {
  function gatedQueue() {
    const gates: Array<() => void> = [];
    const events: string[] = [];
    const queue = new ResourceLeaseQueue({
      maxAttempts: 5,
      replicator: {
        async publish(batch) {
          events.push(...batch.map((e) => e.eventType));
          if (batch.some((e) => e.eventType === "LeaseGranted")) await new Promise<void>((r) => gates.push(r));
        },
      },
    });
    const open = () => {
      for (const g of gates.splice(0)) g();
    };
    return { queue, events, open };
  }

  it("goes back to the queue at once (attempt counted) instead of waiting for its lease to expire", async () => {
    const { queue, events, open } = gatedQueue();
    await queue.enqueueMany([item(1), item(2)]);
    const caller = new AbortController();
    const leasing = queue.lease({ maxItems: 2, signal: caller.signal });
    await new Promise((r) => setImmediate(r));
    caller.abort(); // the HTTP client closed its connection while the grant was being committed
    open();
    expect((await rejection(leasing)).code).toBe(ErrorCodes.resourceLease.cancelled);
    expect(queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
    expect(events.filter((t) => t === "Failed")).toHaveLength(2);
    const leasingAgain = queue.lease({ maxItems: 2 });
    await new Promise((r) => setImmediate(r));
    open();
    const again = await leasingAgain;
    expect(again.map((g) => [g.sequenceId, g.attempt])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it("does the same for a long-poll served by a later enqueue", async () => {
    const { queue, open } = gatedQueue();
    const caller = new AbortController();
    const leasing = queue.lease({ maxItems: 5, waitMs: 10_000, signal: caller.signal });
    const enqueued = queue.enqueue(item(1)); // its commit carries the waiter's LeaseGranted
    await new Promise((r) => setImmediate(r));
    caller.abort();
    open();
    await enqueued;
    expect((await rejection(leasing)).code).toBe(ErrorCodes.resourceLease.cancelled);
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
  });

  it("keeps the grants when the caller is still there", async () => {
    const { queue, open } = gatedQueue();
    await queue.enqueue(item(1));
    const caller = new AbortController();
    const leasing = queue.lease({ signal: caller.signal });
    await new Promise((r) => setImmediate(r));
    open();
    expect(await leasing).toHaveLength(1);
    caller.abort(); // after delivery: nothing to undo
    expect(queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 1 });
  });
});
