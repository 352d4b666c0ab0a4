import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ResourceLeaseReplicationEvent, silentLogger } from "@omnirelay/core";
import { InMemoryDeterministicStateStore } from "@omnirelay/core/deterministic";
import { isReplayEvent } from "@omnirelay/core/replication";
import { SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { LogFollower } from "./follower.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const event = (n: number): ResourceLeaseReplicationEvent => ({
  sequenceNumber: n,
  eventType: "Enqueue",
  timestamp: 1_700_000_000_000 + n,
  metadata: {},
});
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => event(from + i));

describe("LogFollower's replay tag", () => {
  it("tags what it catches up on at start lease.replay=true, later commits false, and resumes from its checkpoint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-follower-"));
    dirs.push(dir);
    const log = await SqliteResourceLeaseReplicator.open({ path: join(dir, "log.db") });
    const checkpointStore = new InMemoryDeterministicStateStore();
    const seen: Array<[number, boolean | undefined]> = [];
    const sink = {
      apply: async (e: ResourceLeaseReplicationEvent) => void seen.push([e.sequenceNumber, isReplayEvent(e)]),
    };
    const follower = () =>
      new LogFollower({ replicator: log, sink, checkpointStore, checkpointKey: "f", logger: silentLogger });

    await log.publish(range(1, 5));
    const first = follower();
    await first.start();
    expect(first.replayedEvents).toBe(5);
    await log.publish(range(6, 8));
    await expect.poll(() => first.checkpoint).toBe(8);
    await first.close();
    expect(seen).toEqual([...range(1, 5).map((e) => [e.sequenceNumber, true]), [6, false], [7, false], [8, false]]);

    // A restart replays only what came after its checkpoint, and tags it as replay; the log keeps no tag.
    await log.publish(range(9, 10));
    seen.length = 0;
    const second = follower();
    await second.start();
    expect(seen).toEqual([
      [9, true],
      [10, true],
    ]);
    await second.close();
    for await (const e of log.read(1)) expect(isReplayEvent(e)).toBeUndefined();
    await log.close();
  });
});
