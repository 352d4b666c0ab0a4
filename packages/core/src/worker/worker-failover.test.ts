import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseQueue } from "../queue/queue.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import { item, queueClient, spyClient } from "./test-helpers.js";
import { ResourceLeaseWorker } from "./worker.js";

// A worker whose client answers resourcelease.not_owner for a while (a failover the client could not ride out within
// one call): the lease is not lost, its handler keeps running, and the renewal and the completion go through once
// the shard has an owner again. Real time, an in-process queue.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const notOwner = () =>
  new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.notOwner,
    message: "Nobody owns the shard right now.",
    metadata: { owner: "", ownerUrl: "", shard: "s" },
  });

describe("a worker and resourcelease.not_owner", () => {
  it("keeps the lease: retries the renewal and the completion instead of aborting the handler", async () => {
    const queue = new ResourceLeaseQueue({ leaseDurationMs: 600 });
    cleanups.push(() => queue.close());
    const inner = queueClient(queue);
    let refuseHeartbeats = 2;
    let refuseCompletes = 1;
    const client = spyClient(inner, {
      heartbeat: async (token, options) => {
        if (refuseHeartbeats-- > 0) throw notOwner();
        return inner.heartbeat(token, options);
      },
      complete: async (token, options) => {
        if (refuseCompletes-- > 0) throw notOwner();
        return inner.complete(token, options);
      },
    });
    let signal: AbortSignal | undefined;
    const worker = new ResourceLeaseWorker({
      client,
      peerId: "w",
      leaseWaitMs: 100,
      handler: async (_grant, context) => {
        signal = context.signal;
        // Longer than the lease: only renewals that went through keep it.
        await new Promise<void>((resolve) => setTimeout(resolve, 900));
      },
    });
    cleanups.push(() => worker.close({ graceMs: 0 }));
    const events: ResourceLeaseWorkerEvent[] = [];
    const seen = (async () => {
      for await (const e of worker.events()) {
        events.push(e);
        if (e.type === "completed" || e.type === "fenced") return;
      }
    })();
    await queue.enqueue(item(1));
    worker.start();
    await seen;
    expect(signal?.aborted).toBe(false);
    expect(worker.stats()).toMatchObject({ completed: 1, fenced: 0 });
    const errors = events.filter((e) => e.type === "error");
    expect(errors.map((e) => [e.operation, e.error.code])).toEqual([
      ["heartbeat", ErrorCodes.resourceLease.notOwner],
      ["heartbeat", ErrorCodes.resourceLease.notOwner],
      ["complete", ErrorCodes.resourceLease.notOwner],
    ]);
    expect(client.calls.heartbeats.length).toBeGreaterThan(2);
    expect(queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });
});
