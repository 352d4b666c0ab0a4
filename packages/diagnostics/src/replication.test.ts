import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator, InMemoryDeterministicStateStore } from "@omnirelay/core/deterministic";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { TrackedReplicationSink, type TrackedReplicationSinkObserver } from "./replication.js";

const event = (sequenceNumber: number, timestamp = 0) =>
  ({ eventType: "Enqueue", sequenceNumber, timestamp, metadata: {} }) as unknown as ResourceLeaseReplicationEvent;

function recorder(): { log: string[]; observer: TrackedReplicationSinkObserver } {
  const log: string[] = [];
  return {
    log,
    observer: {
      applied: ({ lagMs, replay }) => log.push(`applied lag=${lagMs} replay=${replay}`),
      failed: (error) => log.push(`failed ${(error as Error).message}`),
      retried: () => log.push("retried"),
    },
  };
}

describe("TrackedReplicationSink", () => {
  it("recognises replays through a deterministic coordinator's store, also in a fresh tracker (a restart)", async () => {
    const clock = new FakeClock(10_000);
    const stateStore = new InMemoryDeterministicStateStore();
    const sink = () => new DeterministicResourceLeaseCoordinator({ stateStore, changeId: "c" });
    const first = recorder();
    const before = new TrackedReplicationSink({
      sink: "d",
      shard: "s",
      inner: sink(),
      clock,
      observer: first.observer,
    });
    await before.apply(event(1, 9_000));
    await before.apply(event(2, 9_500));
    await before.apply(event(1, 9_000));
    expect(first.log).toEqual([
      "applied lag=1000 replay=false",
      "applied lag=500 replay=false",
      "applied lag=1000 replay=true",
    ]);
    const second = recorder();
    const after = new TrackedReplicationSink({
      sink: "d",
      shard: "s",
      inner: sink(),
      clock,
      observer: second.observer,
    });
    await after.apply(event(2, 9_500));
    await after.apply(event(3, 10_000));
    expect(second.log).toEqual(["applied lag=500 replay=true", "applied lag=0 replay=false"]);
    expect(after.checkpoint()).toEqual({ lastSequence: 3, lagMs: 0 });
  });

  it("reports a rejection, then the retry of the same event, and passes the rejection on", async () => {
    const { log, observer } = recorder();
    let down = true;
    const tracked = new TrackedReplicationSink({
      sink: "a",
      shard: "s",
      clock: new FakeClock(0),
      observer,
      inner: {
        apply: async () => {
          if (down) throw new Error("down");
        },
      },
    });
    await expect(tracked.apply(event(1))).rejects.toThrow("down");
    expect(tracked.checkpoint()).toEqual({ lastSequence: 0 });
    down = false;
    await tracked.apply(event(1));
    await tracked.apply(event(2));
    expect(log).toEqual(["failed down", "retried", "applied lag=0 replay=false", "applied lag=0 replay=false"]);
  });
});
