import { afterEach, describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../../contracts/payload.js";
import { item } from "../../worker/test-helpers.js";
import { closeAll, session, sleep, stack } from "./session-harness.js";

afterEach(closeAll);

// A worker's `stop` on its session, spoken by hand on a real WebSocket: the dispatcher takes the credit back, answers
// `stopped` after the last grant it sends, and still settles what the worker holds.

describe("worker sessions over HTTP: stop", () => {
  it("answers stopped, grants nothing after it (credit sent later is ignored), and still settles", async () => {
    const s = await stack({ queue: { leaseDurationMs: 60_000 } });
    await s.client.enqueueMany([item(1)]);
    const w = await session(s.url);
    w.send({ credit: 5 });
    await w.until(() => w.grants().length === 1);
    const [held] = w.grants() as [ResourceLeaseGrant];
    w.send({ stop: true });
    await w.until(() => w.frames.some((f) => f.stopped === true));
    // The four credit left were dropped with the waiting lease: items enqueued now stay pending.
    await s.client.enqueueMany([item(2), item(3)]);
    w.send({ credit: 2 });
    await sleep(150);
    expect(w.grants()).toHaveLength(1);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 1 });
    // Settlements go on after the stop, and the session stays open for them.
    w.send({ complete: [{ id: 1, ownershipToken: held.ownershipToken }] });
    await w.until(() => w.result(1) !== undefined);
    expect(w.result(1)).toEqual({ id: 1 });
    expect(w.closed()).toBeUndefined();
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
  });

  it("sends every grant it made before its stopped, and none after", async () => {
    const s = await stack({ queue: { leaseDurationMs: 60_000 } });
    const w = await session(s.url);
    w.send({ credit: 50 });
    await sleep(50);
    // Items arrive while the stop is on its way: each is granted and sent before `stopped`, or stays in the queue.
    const enqueued = s.client.enqueueMany(Array.from({ length: 30 }, (_, i) => item(i + 1)));
    w.send({ stop: true });
    await enqueued;
    await w.until(() => w.frames.some((f) => f.stopped === true));
    await sleep(100);
    const at = w.frames.findIndex((f) => f.stopped === true);
    expect(w.frames.slice(at + 1).some((f) => f.grants !== undefined)).toBe(false);
    const sent = w.grants().length;
    expect(s.queue.stats()).toMatchObject({ pendingCount: 30 - sent, activeLeaseCount: sent });
  });
});
