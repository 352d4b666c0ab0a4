import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { item } from "./test-helpers.js";
import { count, httpHarness } from "./test-http-harness.js";

// Closing a worker whose session still holds credit, real HTTP on 127.0.0.1. Items enqueued while the worker leaves
// must stay in the queue: a grant pushed into a session the worker is closing would stay leased to nobody until its
// lease expires (and the expiry counts an attempt no handler made).

describe("ResourceLeaseWorker closing its session", () => {
  const { setup, worker } = httpHarness();

  it("takes its credit back before it closes: items enqueued as it leaves are not leased to it", async () => {
    const stack = await setup({ leaseDurationMs: 60_000 });
    await stack.client().enqueueMany([item(1), item(2)]);
    const w = worker({
      client: stack.client("worker-a"),
      peerId: "worker-a",
      concurrency: 2,
      prefetch: 2,
      handler: () => {},
    });
    const done = count(w.events(), "completed", 2);
    w.start();
    await done;
    // The session holds four credit and a waiting lease. Enqueue on the same server right after close resolves,
    // before the dispatcher could have read a close frame that close() merely sent.
    await w.close();
    await stack.queue.enqueueMany([item(3), item(4), item(5)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 0 });
    expect(w.stats()).toMatchObject({ inFlight: 0, leased: 2, completed: 2 });
  });

  it("hands back, unrun, what is granted to it while it closes", async () => {
    const stack = await setup({ leaseDurationMs: 60_000 });
    await stack.client().enqueueMany([item(1)]);
    const handled: number[] = [];
    const w = worker({
      client: stack.client("worker-b"),
      peerId: "worker-b",
      concurrency: 2,
      prefetch: 2,
      handler: (grant) => {
        handled.push(grant.sequenceId);
      },
    });
    const done = count(w.events(), "completed", 1);
    w.start();
    await done;
    // Enqueued in the same turn as close(): the session's waiting lease grants them before the stop reaches it.
    const closing = w.close();
    await stack.queue.enqueueMany([item(2), item(3), item(4)]);
    await closing;
    await expect.poll(() => stack.queue.stats().pendingCount).toBe(3);
    expect(stack.queue.stats().activeLeaseCount).toBe(0);
    expect(handled).toEqual([1]);
  });

  it("on a session, closes without waiting out the pause meant for a unary lease call in flight", async () => {
    const stack = await setup({ leaseDurationMs: 60_000 });
    // The worker's timers run on a clock that never moves: a close that waited on one of them would never end.
    const w = worker({
      client: stack.client("worker-c"),
      peerId: "worker-c",
      clock: new FakeClock(),
      handler: () => {},
    });
    w.start();
    await new Promise((r) => setTimeout(r, 100)); // the session is open and holds credit
    const ended = await Promise.race([
      w.close().then(() => "closed"),
      new Promise((r) => setTimeout(() => r("still closing"), 2000)),
    ]);
    expect(ended).toBe("closed");
    await stack.queue.enqueueMany([item(1)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
  });
});
