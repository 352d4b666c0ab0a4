import { describe, expect, it } from "vitest";
import { type Running, start } from "./drill-helpers.js";
import { item, tempDb } from "./helpers.js";

/** 600 items enqueued in batches of 100, the first 200 leased and completed: 1,000 events, 400 items held. */
async function work(node: Running): Promise<number> {
  for (let from = 0; from < 600; from += 100) {
    await node.client.enqueueMany(Array.from({ length: 100 }, (_, i) => item(from + i, { requestId: `r${from + i}` })));
  }
  for (let done = 0; done < 200; ) {
    const grants = await node.client.lease({ maxItems: 50, peerId: "w" });
    for (const g of grants) await node.client.complete(g.ownershipToken);
    done += grants.length;
  }
  return (await node.client.stats()).lastEventSequence;
}

/** The items `work` leaves pending, in order. */
const REMAINING = Array.from({ length: 400 }, (_, i) => String(200 + i));

/** Stops the node with `signal` and waits for its process to exit. */
async function stop(node: Running, signal: NodeJS.Signals): Promise<void> {
  node.child.kill(signal);
  await node.exited;
  await node.client.close();
}

/**
 * Starts a node on a fresh log, does `work`, stops it with `signal` and starts it again: the second node and the last
 * event's sequence number before the stop.
 */
async function workThenRestart(signal: NodeJS.Signals): Promise<{ second: Running; last: number }> {
  const path = tempDb();
  const first = await start(path);
  const last = await work(first);
  await stop(first, signal);
  return { second: await start(path), last };
}

async function leaseAll(node: Running): Promise<string[]> {
  const grants = await node.client.lease({ maxItems: 1000, peerId: "after" });
  return grants.map((g) => g.payload.resourceId);
}

describe("a dispatcher process stopped with SIGTERM", () => {
  it("stores a snapshot at close: the next start replays nothing and serves the same queue", async () => {
    // The fixture snapshots every 200 events (and at each doubling while it fills): the last ~600 are in none.
    const { second, last } = await workThenRestart("SIGTERM");
    expect(second.snapshot).toBe(last);
    expect(second.replayed).toBe(0);
    expect(await leaseAll(second)).toEqual(REMAINING);
    // Idempotent enqueue is remembered across the snapshot.
    expect(await second.client.enqueue(item(599, { requestId: "r599" }))).toMatchObject({
      duplicate: true,
      sequenceId: 600,
    });
    await stop(second, "SIGKILL");
  });

  it("killed instead, replays the events after its last periodic snapshot, with the same result", async () => {
    const { second, last } = await workThenRestart("SIGKILL");
    expect(second.snapshot).toBeLessThan(last);
    expect(second.replayed).toBe(last - second.snapshot);
    expect(second.replayed).toBeGreaterThanOrEqual(200);
    expect(await leaseAll(second)).toEqual(REMAINING);
    await stop(second, "SIGKILL");
  });
});
