import { ResourceLeaseQueue } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { decodeQueueSnapshot, encodeQueueSnapshot } from "../src/snapshot-codec.js";

const base = {
  version: 1 as const,
  lastEventSequence: 4,
  lastFencingToken: 1,
  lastSequenceId: 2,
  mode: "running" as const,
  pending: [],
  delayed: [],
  active: [],
  deadLetters: [],
  requestIds: [],
  reusableIds: [],
};

describe("the JetStream snapshot codec", () => {
  it("encodes a snapshot view to the same text as the whole snapshot of the same moment", async () => {
    const queue = new ResourceLeaseQueue({ clock: new FakeClock() });
    const payload = (n: number) => ({
      resourceType: "job",
      resourceId: `r${n}`,
      partitionKey: `p${n % 2}`,
      payloadEncoding: "json",
      body: new TextEncoder().encode(`{"n":${n}}`),
    });
    await queue.enqueueMany([1, 2, 3, 4, 5, 6].map(payload));
    const [a, b, c] = await queue.lease({ maxItems: 3, peerId: "w" });
    await queue.fail(a!.ownershipToken, { reason: "later", delayMs: 60_000 }); // delayed, with its error
    await queue.fail(b!.ownershipToken, { reason: "poison", requeue: false }); // dead-lettered
    await queue.fail(c!.ownershipToken, { reason: "again" }); // pending again, attempt 1
    const text = encodeQueueSnapshot(queue.snapshotView());
    expect(text).toBe(encodeQueueSnapshot(queue.snapshot()));
    const decoded = decodeQueueSnapshot(text);
    expect([decoded.pending.length, decoded.delayed.length, decoded.deadLetters.length]).toEqual([4, 1, 1]);
    await queue.close();
  });

  it("round-trips per-key rate windows and virtual times, and leaves them out when there are none", () => {
    const dispatch = { vtime: 2.5, keys: [["a", 3, 1_767_225_600_000, 2, 1_767_225_660_000] as const] };
    expect(decodeQueueSnapshot(encodeQueueSnapshot({ ...base, dispatch }))).toEqual({ ...base, dispatch });
    expect(decodeQueueSnapshot(encodeQueueSnapshot(base))).toEqual(base);
  });

  it("round-trips the last event's hash (the next event links to it), and reads snapshots without one", () => {
    const lastEventHash = "Q_OuOBi4sewF94u3NK2XkA";
    expect(decodeQueueSnapshot(encodeQueueSnapshot({ ...base, lastEventHash }))).toEqual({ ...base, lastEventHash });
    expect(decodeQueueSnapshot(encodeQueueSnapshot(base))).not.toHaveProperty("lastEventHash");
    const text = JSON.parse(encodeQueueSnapshot(base));
    expect(() => decodeQueueSnapshot(JSON.stringify({ ...text, lastEventHash: 7 }))).toThrow(/hash/);
  });

  it("refuses damaged dispatch state instead of restoring a default", () => {
    const text = JSON.parse(encodeQueueSnapshot({ ...base, dispatch: { vtime: 1, keys: [["a", 1, 0, 0, 0]] } }));
    for (const bad of [
      { vtime: "1", keys: [] },
      { vtime: 1, keys: [["a", 1, 0, 0]] },
      { vtime: 1, keys: [[1, 1, 0, 0, 0]] },
    ]) {
      expect(() => decodeQueueSnapshot(JSON.stringify({ ...text, dispatch: bad }))).toThrow(/dispatch/);
    }
  });
});
