import { ResourceLeaseQueue, type ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotInPieces } from "@omnirelay/core/replication";
import { FakeClock } from "@omnirelay/core/testing";
import { encodePendingItem } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { decodeQueueSnapshot, encodeQueueSnapshotInSteps } from "../src/snapshot-codec.js";

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

const utf8 = new TextEncoder();
const bytesOf = (snapshot: ResourceLeaseQueueSnapshotView) =>
  utf8.encode([...encodeQueueSnapshotInSteps(snapshot)].join(""));
const corrupt = (reason: string) => Object.assign(new Error(`corrupt: ${reason}`), { corrupt: true });

/** A decoded snapshot as one whole snapshot: its head and every piece's lists, concatenated in order. */
function whole(decoded: ResourceLeaseQueueSnapshot | ResourceLeaseSnapshotInPieces): ResourceLeaseQueueSnapshot {
  if (!("pieces" in decoded)) return decoded;
  const { dispatchVirtualTime, ...head } = decoded.head;
  const lists: Record<string, unknown[]> = {};
  for (const piece of decoded.pieces) {
    for (const [name, entries] of Object.entries(piece)) lists[name] = [...(lists[name] ?? []), ...(entries as [])];
  }
  const { dispatchKeys, schedules, cancelledLeases, ...rest } = lists;
  return {
    ...base,
    ...head,
    ...rest,
    ...(schedules ? { schedules } : {}),
    ...(cancelledLeases ? { cancelledLeases } : {}),
    ...(dispatchVirtualTime !== undefined
      ? { dispatch: { vtime: dispatchVirtualTime, keys: dispatchKeys ?? [] } }
      : {}),
  } as ResourceLeaseQueueSnapshot;
}

const roundTrip = (snapshot: ResourceLeaseQueueSnapshotView) =>
  whole(decodeQueueSnapshot(bytesOf(snapshot), corrupt).snapshot);

const payload = (n: number, pad = 0) => ({
  resourceType: "job",
  resourceId: `r${n}`,
  partitionKey: `p${n % 2}`,
  payloadEncoding: "json",
  body: utf8.encode(`{"n":${n}${pad ? `,"pad":"${"x".repeat(pad)}"` : ""}}`),
});

/** Reads every piece (what a rebuild does), returning what it threw. */
function readAll(bytes: Uint8Array): unknown {
  try {
    const decoded = decodeQueueSnapshot(bytes, corrupt).snapshot;
    if ("pieces" in decoded) for (const _ of decoded.pieces);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("the JetStream snapshot codec", () => {
  it("encodes a view as the whole snapshot of the same moment, and a rebuild from its pieces reaches that queue", async () => {
    const queue = new ResourceLeaseQueue({ clock: new FakeClock() });
    await queue.enqueueMany([1, 2, 3, 4, 5, 6].map((n) => payload(n)));
    const [a, b, c] = await queue.lease({ maxItems: 3, peerId: "w" });
    await queue.fail(a!.ownershipToken, { reason: "later", delayMs: 60_000 }); // delayed, with its error
    await queue.fail(b!.ownershipToken, { reason: "poison", requeue: false }); // dead-lettered
    await queue.fail(c!.ownershipToken, { reason: "again" }); // pending again, attempt 1
    await queue.lease({ maxItems: 1, peerId: "w2" }); // one active lease
    const bytes = bytesOf(queue.snapshotView());
    expect(bytes).toEqual(bytesOf(queue.snapshot()));
    const decoded = decodeQueueSnapshot(bytes, corrupt);
    expect(decoded.lastEventSequence).toBe(queue.snapshot().lastEventSequence);
    expect(whole(decoded.snapshot)).toEqual(queue.snapshot());
    // The pieces are read once: the rebuild decodes again.
    const { snapshot } = decodeQueueSnapshot(bytes, corrupt);
    const rebuilt = await ResourceLeaseQueue.rebuild(
      [],
      { clock: new FakeClock() },
      { snapshot, activeLeases: "keep" },
    );
    expect(rebuilt.snapshot()).toEqual(queue.snapshot());
    await Promise.all([queue.close(), rebuilt.close()]);
  });

  it("encodes a large queue in steps of bounded size (never one text of all of it) and decodes it in pieces", async () => {
    const queue = new ResourceLeaseQueue({ clock: new FakeClock(), capacity: 20_000 });
    for (let n = 0; n < 10_000; n += 1000) {
      await queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => payload(n + i, 100)));
    }
    const steps = [...encodeQueueSnapshotInSteps(queue.snapshotView())];
    const total = steps.reduce((sum, s) => sum + s.length, 0);
    expect(steps.length).toBeGreaterThanOrEqual(5); // the head, then runs of the 10,000 items
    expect(Math.max(...steps.map((s) => s.length))).toBeLessThan(total / 4);
    const decoded = decodeQueueSnapshot(utf8.encode(steps.join("")), corrupt).snapshot;
    if (!("pieces" in decoded)) throw new Error("expected a snapshot in pieces");
    const pieces = [...decoded.pieces];
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    expect(pieces.flatMap((p) => p.pending ?? []).map((p) => p.sequenceId)).toEqual(
      queue.snapshot().pending.map((p) => p.sequenceId),
    );
    await queue.close();
  });

  it("round-trips per-key rate windows and virtual times, and leaves them out when there are none", () => {
    const dispatch = { vtime: 2.5, keys: [["a", 3, 1_767_225_600_000, 2, 1_767_225_660_000] as const] };
    expect(roundTrip({ ...base, dispatch })).toEqual({ ...base, dispatch });
    expect(roundTrip(base)).toEqual(base);
  });

  it("round-trips the last event's hash (the next event links to it), and reads snapshots without one", () => {
    const lastEventHash = "Q_OuOBi4sewF94u3NK2XkA";
    expect(roundTrip({ ...base, lastEventHash })).toEqual({ ...base, lastEventHash });
    expect(roundTrip(base)).not.toHaveProperty("lastEventHash");
    const [head] = [...encodeQueueSnapshotInSteps(base)];
    const bad = JSON.stringify({ ...JSON.parse(head!), lastEventHash: 7 });
    expect(() => decodeQueueSnapshot(utf8.encode(`${bad}\n`), corrupt)).toThrow(/hash/);
  });

  it("reads the single JSON text of an earlier version", () => {
    const item = { payload: payload(1), sequenceId: 1, attempt: 1, enqueuedAt: 1_767_225_600_000 };
    const dead = { ...item, sequenceId: 2, deadLetteredAt: 1_767_225_601_000, reason: "failed" as const };
    const text = JSON.stringify({
      format: "omnirelay-queue-snapshot/1",
      lastEventSequence: 9,
      lastFencingToken: 3,
      lastSequenceId: 2,
      mode: "draining",
      pending: [encodePendingItem(item)],
      delayed: [],
      active: [],
      deadLetters: [{ item: encodePendingItem(dead), deadLetteredAt: dead.deadLetteredAt, reason: "failed" }],
      requestIds: [["req-1", 1, 1_767_229_200_000]],
      reusableIds: [],
      schedules: [],
      cancelledLeases: [],
      dispatch: { vtime: 1, keys: [["k", 1, 0, 0, 0]] },
      lastEventHash: "abc",
    });
    const decoded = decodeQueueSnapshot(utf8.encode(text), corrupt);
    expect(decoded.lastEventSequence).toBe(9);
    expect(decoded.snapshot).toEqual({
      ...base,
      lastEventSequence: 9,
      lastFencingToken: 3,
      lastSequenceId: 2,
      mode: "draining",
      pending: [item],
      deadLetters: [dead],
      requestIds: [["req-1", 1, 1_767_229_200_000]],
      dispatch: { vtime: 1, keys: [["k", 1, 0, 0, 0]] },
      lastEventHash: "abc",
    });
    expect(() => decodeQueueSnapshot(utf8.encode(text.replace("snapshot/1", "snapshot/0")), corrupt)).toThrow(
      /not a queue/,
    );
  });

  it("refuses a damaged head at once, and damaged lines as the rebuild reads them", async () => {
    const queue = new ResourceLeaseQueue({ clock: new FakeClock() });
    await queue.enqueueMany([1, 2, 3].map((n) => payload(n)));
    const steps = [
      ...encodeQueueSnapshotInSteps({ ...queue.snapshot(), dispatch: { vtime: 1, keys: [["a", 1, 0, 0, 0]] } }),
    ];
    const text = steps.join("");
    const lines = text.split("\n").slice(0, -1);
    const head = JSON.parse(lines[0]!);
    const bytes = (ls: string[]) => utf8.encode(`${ls.join("\n")}\n`);
    expect(readAll(bytes(lines))).toBeUndefined();
    // A head that does not add up is refused before anything is restored.
    for (const bad of [
      { ...head, counts: { ...head.counts, pending: -1 } },
      { ...head, counts: undefined },
      { ...head, lastEventSequence: 2 ** 53 },
      { ...head, dispatchVirtualTime: undefined },
      { ...head, mode: "paused" },
    ]) {
      expect(() => decodeQueueSnapshot(bytes([JSON.stringify(bad), ...lines.slice(1)]), corrupt)).toThrow(/snapshot/);
    }
    // Lines: one missing, one too many, one that is not an item, bad per-key state.
    const cases: Array<[string[], RegExp]> = [
      [lines.slice(0, -1), /ends before its last dispatchKeys/],
      [[...lines, lines[1]!], /more lines than its head counts/],
      [[lines[0]!, "{}", ...lines.slice(2)], /pending entry does not decode/],
      [[...lines.slice(0, -1), '["a",1,0,0]'], /dispatch/],
    ];
    for (const [ls, reason] of cases) {
      const error = readAll(bytes(ls)) as { corrupt?: boolean; message?: string };
      expect(error?.corrupt).toBe(true);
      expect(error.message).toMatch(reason);
    }
    await queue.close();
  });
});
