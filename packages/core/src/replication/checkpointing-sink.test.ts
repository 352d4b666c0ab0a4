import { describe, expect, it, vi } from "vitest";
import type { ResourceLeaseReplicationSink } from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import { FakeClock } from "../testing/fake-clock.js";
import {
  InMemoryResourceLeaseCheckpointStore,
  type ResourceLeaseCheckpoint,
  type ResourceLeaseCheckpointStore,
} from "./checkpoint-store.js";
import { CheckpointingResourceLeaseReplicationSink } from "./checkpointing-sink.js";
import { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";
import { deferred, flush, makeEvent } from "./test-fixtures.js";

function countingSink() {
  const applied: number[] = [];
  const sink: ResourceLeaseReplicationSink = {
    async apply(event) {
      applied.push(event.sequenceNumber);
    },
  };
  return { sink, applied };
}

describe("CheckpointingResourceLeaseReplicationSink", () => {
  it("applies out-of-order events without losing any, and skips replays", async () => {
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink });
    await sink.apply(makeEvent(1));
    await sink.apply(makeEvent(3));
    expect(sink.checkpoint()).toEqual({ sequence: 1, appliedAbove: [3], gapsSkipped: 0 });
    await sink.apply(makeEvent(2));
    expect(inner.applied).toEqual([1, 3, 2]);
    expect(sink.checkpoint()).toEqual({ sequence: 3, appliedAbove: [], gapsSkipped: 0 });
    await sink.apply(makeEvent(2));
    await sink.apply(makeEvent(3));
    await sink.apply(makeEvent(1));
    expect(inner.applied).toEqual([1, 3, 2]);
  });

  it("skips a replay of an event applied above the checkpoint", async () => {
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink });
    await sink.apply(makeEvent(5));
    await sink.apply(makeEvent(5));
    expect(inner.applied).toEqual([5]);
    expect(sink.isApplied(5)).toBe(true);
    expect(sink.isApplied(4)).toBe(false);
  });

  it("applies concurrent calls with the same sequence once, and all callers see the outcome", async () => {
    const gate = deferred();
    let calls = 0;
    const sink = new CheckpointingResourceLeaseReplicationSink({
      inner: {
        async apply() {
          calls++;
          await gate.promise;
        },
      },
    });
    const a = sink.apply(makeEvent(1));
    const b = sink.apply(makeEvent(1));
    await flush();
    expect(calls).toBe(1);
    gate.resolve();
    await Promise.all([a, b]);
    expect(calls).toBe(1);
    expect(sink.checkpoint().sequence).toBe(1);
  });

  it("does not mark an event whose inner apply failed, so a retry applies it", async () => {
    let fail = true;
    const applied: number[] = [];
    const sink = new CheckpointingResourceLeaseReplicationSink({
      inner: {
        async apply(event) {
          if (fail) throw new Error("target down");
          applied.push(event.sequenceNumber);
        },
      },
    });
    const both = [sink.apply(makeEvent(1)), sink.apply(makeEvent(1))];
    for (const attempt of both) {
      await expect(attempt).rejects.toMatchObject({
        code: "resourcelease.replication.failed",
        metadata: { "replication.stage": "checkpoint.apply", "replication.sequence": "1" },
      });
    }
    expect(sink.isApplied(1)).toBe(false);
    fail = false;
    await sink.apply(makeEvent(1));
    expect(applied).toEqual([1]);
  });

  it("persists the checkpoint so a fresh sink on the same store skips what was applied", async () => {
    const store = new InMemoryResourceLeaseCheckpointStore();
    const first = countingSink();
    const sink1 = new CheckpointingResourceLeaseReplicationSink({ inner: first.sink, store });
    for (const seq of [1, 2, 4]) await sink1.apply(makeEvent(seq));
    expect(store.saves).toBe(3);
    expect(await store.load()).toEqual({ sequence: 2, appliedAbove: [4], gapsSkipped: 0 });

    const second = countingSink();
    const sink2 = new CheckpointingResourceLeaseReplicationSink({ inner: second.sink, store, initialSequence: 100 });
    expect(await sink2.load()).toEqual({ sequence: 2, appliedAbove: [4], gapsSkipped: 0 });
    for (const seq of [1, 2, 3, 4, 5]) await sink2.apply(makeEvent(seq));
    expect(second.applied).toEqual([3, 5]);
    expect(await store.load()).toEqual({ sequence: 5, appliedAbove: [], gapsSkipped: 0 });
  });

  it("saves checkpoints that never move backwards under concurrent applies", async () => {
    const saved: number[] = [];
    const slowStore: ResourceLeaseCheckpointStore = {
      async load() {
        return undefined;
      },
      async save(checkpoint: ResourceLeaseCheckpoint) {
        await flush();
        saved.push(checkpoint.sequence + checkpoint.appliedAbove.length);
      },
    };
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink, store: slowStore });
    await Promise.all([5, 3, 1, 2, 4, 6].map((seq) => sink.apply(makeEvent(seq))));
    expect(saved.length).toBeGreaterThan(0);
    expect(saved.length).toBeLessThanOrEqual(6);
    expect(saved).toEqual([...saved].sort((a, b) => a - b));
    expect(saved.at(-1)).toBe(6);
    expect(sink.checkpoint()).toEqual({ sequence: 6, appliedAbove: [], gapsSkipped: 0 });
  });

  it("resolves apply only after the checkpoint was saved, and reports save failures", async () => {
    const saveGate = deferred();
    let fail = false;
    const store: ResourceLeaseCheckpointStore = {
      async load() {
        return undefined;
      },
      async save() {
        await saveGate.promise;
        if (fail) throw new Error("store offline");
      },
    };
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: countingSink().sink, store });
    let done = false;
    const apply = sink.apply(makeEvent(1)).then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(false);
    saveGate.resolve();
    await apply;
    fail = true;
    await expect(sink.apply(makeEvent(2))).rejects.toMatchObject({
      metadata: { "replication.stage": "checkpoint.save", "replication.sequence": "2" },
    });
    expect(sink.isApplied(2)).toBe(true);
  });

  it("starts from initialSequence when the store is empty", async () => {
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink, initialSequence: 10 });
    await sink.apply(makeEvent(10));
    await sink.apply(makeEvent(11));
    expect(inner.applied).toEqual([11]);
  });

  it("moves past a gap when more events than the window wait above it", async () => {
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink, maxOutOfOrderWindow: 2 });
    await sink.apply(makeEvent(1));
    await sink.apply(makeEvent(3));
    await sink.apply(makeEvent(5));
    expect(sink.checkpoint()).toEqual({ sequence: 1, appliedAbove: [3, 5], gapsSkipped: 0 });
    await sink.apply(makeEvent(6));
    // Gap at 2 given up: the checkpoint absorbs 3, then still waits for 4 below 5 and 6.
    expect(sink.checkpoint()).toEqual({ sequence: 3, appliedAbove: [5, 6], gapsSkipped: 1 });
    expect(sink.gapsSkipped).toBe(1);
    await sink.apply(makeEvent(2));
    expect(inner.applied).toEqual([1, 3, 5, 6]);
    await sink.apply(makeEvent(4));
    expect(sink.checkpoint()).toEqual({ sequence: 6, appliedAbove: [], gapsSkipped: 1 });
  });

  it("reports lag to onApplied and contains callback failures", async () => {
    const clock = new FakeClock();
    const warnings: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (obj) => void warnings.push(obj), error() {} };
    const lags: number[] = [];
    let mode: "ok" | "throw" | "reject" = "ok";
    const sink = new CheckpointingResourceLeaseReplicationSink({
      inner: countingSink().sink,
      clock,
      logger,
      onApplied: (_event, lagMs) => {
        lags.push(lagMs);
        if (mode === "throw") throw new Error("metrics broke");
        if (mode === "reject") return Promise.reject(new Error("metrics broke async"));
      },
    });
    await sink.apply(makeEvent(1, "Enqueue", { timestamp: clock.now() - 250 }));
    await sink.apply(makeEvent(2, "Enqueue", { timestamp: clock.now() + 1_000 }));
    mode = "throw";
    await sink.apply(makeEvent(3, "Enqueue", { timestamp: clock.now() - 7 }));
    mode = "reject";
    await sink.apply(makeEvent(4, "Enqueue", { timestamp: clock.now() }));
    await flush();
    expect(lags).toEqual([250, 0, 7, 0]);
    expect(warnings).toHaveLength(2);
    expect(sink.checkpoint().sequence).toBe(4);
  });

  it("measures lag against the real clock", async () => {
    const onApplied = vi.fn();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: countingSink().sink, onApplied });
    const event = makeEvent(1, "Enqueue", { timestamp: Date.now() - 120 });
    await sink.apply(event);
    const lagMs = onApplied.mock.calls[0]?.[1] as number;
    expect(onApplied).toHaveBeenCalledWith(event, expect.any(Number));
    expect(lagMs).toBeGreaterThanOrEqual(120);
    expect(lagMs).toBeLessThan(5_000);
  });

  it("rejects a malformed stored checkpoint and retries a failed load", async () => {
    const bad = new CheckpointingResourceLeaseReplicationSink({
      inner: countingSink().sink,
      store: { load: async () => ({ sequence: 5, appliedAbove: [4], gapsSkipped: 0 }), save: async () => {} },
    });
    await expect(bad.apply(makeEvent(6))).rejects.toMatchObject({
      status: "data-loss",
      code: "resourcelease.replication.checkpoint_invalid",
      metadata: { field: "appliedAbove" },
    });
    let loads = 0;
    const flaky = new CheckpointingResourceLeaseReplicationSink({
      inner: countingSink().sink,
      store: {
        async load() {
          loads++;
          if (loads === 1) throw new Error("not yet");
          return { sequence: 3, appliedAbove: [], gapsSkipped: 0 };
        },
        save: async () => {},
      },
    });
    await expect(flaky.apply(makeEvent(1))).rejects.toMatchObject({
      metadata: { "replication.stage": "checkpoint.load" },
    });
    expect(await flaky.load()).toEqual({ sequence: 3, appliedAbove: [], gapsSkipped: 0 });
  });

  it("rejects invalid events and options", async () => {
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: countingSink().sink });
    await expect(sink.apply(makeEvent(0))).rejects.toMatchObject({ code: "resourcelease.replication.event_invalid" });
    const inner = countingSink().sink;
    for (const [option, options] of [
      ["inner", { inner: {} as ResourceLeaseReplicationSink }],
      ["initialSequence", { inner, initialSequence: -1 }],
      ["maxOutOfOrderWindow", { inner, maxOutOfOrderWindow: 1.5 }],
    ] as const) {
      expect(() => new CheckpointingResourceLeaseReplicationSink(options)).toThrowError(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option } }),
      );
    }
  });

  it("applies every event once behind the in-memory replicator", async () => {
    const inner = countingSink();
    const sink = new CheckpointingResourceLeaseReplicationSink({ inner: inner.sink });
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [sink] });
    await Promise.all([replicator.publish([makeEvent(1), makeEvent(2)]), replicator.publish([makeEvent(3)])]);
    await sink.apply(makeEvent(2));
    expect(inner.applied).toEqual([1, 2, 3]);
  });
});
