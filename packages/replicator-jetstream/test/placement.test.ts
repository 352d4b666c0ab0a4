import { jetstreamManager } from "@nats-io/jetstream";
import type { Clock, ResourceLeaseItemPayload, TimerHandle } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  JetStreamShardAdmin,
  JetStreamShardOwnership,
  JetStreamShardPlacement,
  type OwnedJetStreamResourceLeaseQueue,
  openOwnedJetStreamResourceLeaseQueue,
  placeShards,
  type ShardPlacementEvent,
} from "../src/index.js";
import { NATS_URL, testStream, until } from "./helpers.js";

/** Real time and timers, until `pause()`: then no timer fires (a SIGSTOPped process) — it neither renews nor notices. */
class PausableClock implements Clock {
  paused = false;
  now(): number {
    return Date.now();
  }
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    return setTimeout(() => {
      if (!this.paused) callback();
    }, delayMs) as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

const TTL = 1000;
const js = testStream();
const id = js.stream.slice("OMNI_TEST_".length);
const buckets = { membersBucket: `OMNI_MEM_${id}`, pinsBucket: `OMNI_PIN_${id}` };
const shards = Array.from({ length: 12 }, (_, i) => `shard-${i}`);

interface Member {
  readonly name: string;
  readonly clock: PausableClock;
  readonly placement: JetStreamShardPlacement<OwnedJetStreamResourceLeaseQueue>;
  readonly events: ShardPlacementEvent[];
}
const members: Member[] = [];
let admin: JetStreamShardAdmin;

async function member(name: string): Promise<Member> {
  const clock = new PausableClock();
  const ownership = await JetStreamShardOwnership.open({
    servers: NATS_URL,
    bucket: js.ownersBucket,
    nodeId: name,
    url: `http://${name}.test:8080`,
    ownershipTtlMs: TTL,
    clock,
  });
  const events: ShardPlacementEvent[] = [];
  const placement = await JetStreamShardPlacement.open({
    ownership,
    shards,
    servers: NATS_URL,
    ...buckets,
    serve: (shard) =>
      openOwnedJetStreamResourceLeaseQueue({
        ownership,
        log: js.options(shard),
        snapshotBucket: js.snapshotBucket,
        acquireWaitMs: 0,
      }),
    onEvent: (event) => events.push(event),
  });
  const m = { name, clock, placement, events };
  members.push(m);
  return m;
}

afterAll(async () => {
  for (const m of members) {
    m.clock.paused = false;
    await m.placement.close().catch(() => undefined);
  }
  await admin?.close();
  const jsm = await jetstreamManager(await js.connection());
  for (const b of Object.values(buckets)) await jsm.streams.delete(`KV_${b}`).catch(() => undefined);
  await js.remove();
});

/** shard → [owner, epoch] as the ownership bucket says. */
async function owners(): Promise<Map<string, [string, number]>> {
  const { shards: views } = await admin.list();
  return new Map(views.map((v) => [v.shard, [v.owner, v.epoch]]));
}

/** Every live member holds exactly the shards placed on it, and the ownership keys agree. */
async function settledOn(live: readonly Member[]): Promise<boolean> {
  const expected = placeShards({ shards, nodes: live.map((m) => m.name) });
  for (const m of live) {
    const held = [...m.placement.owned().keys()].sort();
    const want = shards.filter((s) => expected.get(s) === m.name).sort();
    if (held.join() !== want.join()) return false;
  }
  const now = await owners();
  return shards.every((s) => now.get(s)?.[0] === expected.get(s));
}

const item = (n: number): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n}`,
  payloadEncoding: "json",
});

describe("shard placement over live members", () => {
  it("three members spread 12 shards: each held by exactly one node, none unowned", async () => {
    admin = await JetStreamShardAdmin.open({ servers: NATS_URL, ownersBucket: js.ownersBucket, ...buckets });
    const [a, b, c] = [await member("node-a"), await member("node-b"), await member("node-c")];
    await until(() => settledOn([a!, b!, c!]), 15_000);
    const held = [a!, b!, c!].map((m) => [...m.placement.owned().keys()]);
    expect(held.flat().sort()).toEqual([...shards].sort()); // every shard once, none twice
    for (const h of held) expect(h.length).toBeGreaterThan(0);
    expect((await admin.list()).members.map((m) => m.nodeId)).toEqual(["node-a", "node-b", "node-c"]);
    // Each held shard is served: its queue opened from the log under this node's ownership.
    const queue = a!.placement.owned().values().next().value!.served!.queue;
    expect((await queue.enqueue(item(1))).sequenceIds).toHaveLength(1);
  });

  it("a member that stops renewing loses only its shards, to the others, within about one TTL", async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const before = await owners();
    const cShards = shards.filter((s) => before.get(s)?.[0] === "node-c");
    const cQueue = c.placement.owned().get(cShards[0]!)!.served!.queue;
    const acknowledged = (await cQueue.enqueue(item(2))).sequenceIds;
    const started = Date.now();
    c.clock.paused = true; // c neither renews its membership nor its ownerships, and does not notice
    await until(() => settledOn([a, b]), 15_000);
    const elapsed = Date.now() - started;
    console.log(`placement: a stopped member's ${cShards.length} shards moved after ${elapsed} ms (TTL ${TTL} ms)`);
    // The membership key expires one TTL after c's last renewal; the takeover waits out the ownership TTL from when
    // c's last renewal was seen, so both run in parallel: TTL plus a rebalance interval, and a margin for a busy machine.
    expect(elapsed).toBeLessThan(TTL + a.placement.memberTtlMs / 4 + 2000);
    const after = await owners();
    for (const shard of shards) {
      const [owner, epoch] = before.get(shard)!;
      if (owner === "node-c") {
        expect(after.get(shard)?.[0]).not.toBe("node-c");
        expect(after.get(shard)?.[1]).toBe(epoch + 1);
      } else expect(after.get(shard)).toEqual([owner, epoch]); // the others' shards did not move
    }
    // The new owner took over from the log: c's acknowledged enqueue is there.
    const taker = [a, b].find((m) => m.placement.owned().has(cShards[0]!))!;
    const taken = taker.placement.owned().get(cShards[0]!)!.served!.queue.snapshot();
    expect(taken.pending.map((p) => p.sequenceId)).toEqual(expect.arrayContaining(acknowledged));
  });

  it("a joining member takes only the shards that now belong on it", async () => {
    const [a, b] = members as [Member, Member];
    const before = await owners();
    const seen = [a.events.length, b.events.length];
    const d = await member("node-d");
    await until(() => settledOn([a, b, d]), 15_000);
    const after = await owners();
    const moved = shards.filter((s) => after.get(s)?.[0] !== before.get(s)?.[0]);
    expect(moved.length).toBeGreaterThan(0);
    for (const shard of shards) {
      if (moved.includes(shard)) expect(after.get(shard)).toEqual(["node-d", before.get(shard)![1] + 1]);
      else expect(after.get(shard)).toEqual(before.get(shard));
    }
    // Moves by rebalancing are drain-free releases, announced as such.
    const events = [...a.events.slice(seen[0]), ...b.events.slice(seen[1])];
    expect(
      events
        .filter((e) => e.type === "released" && e.reason === "moved")
        .map((e) => e.shard)
        .sort(),
    ).toEqual([...moved].sort());
    expect(events.filter((e) => e.type !== "released")).toEqual([]);
  });

  it("a pinned shard moves to its node with what its queue holds, and goes back when unpinned", async () => {
    const [a, b, , d] = members as [Member, Member, Member, Member];
    const shard = [...a.placement.owned().keys()][0]!;
    const queue = a.placement.owned().get(shard)!.served!.queue;
    const sequenceIds = (await queue.enqueueMany([item(10), item(11), item(12)])).sequenceIds;
    const epoch = (await owners()).get(shard)![1];
    await admin.move(shard, "node-b");
    await until(() => b.placement.owned().has(shard) && !a.placement.owned().has(shard), 15_000);
    expect((await owners()).get(shard)).toEqual(["node-b", epoch + 1]);
    const view = (await admin.list()).shards.find((s) => s.shard === shard);
    expect(view).toMatchObject({ owner: "node-b", pinnedTo: "node-b", placedOn: "node-b", ownerLive: true });
    const pending = b.placement
      .owned()
      .get(shard)!
      .served!.queue.snapshot()
      .pending.map((p) => p.sequenceId);
    expect(pending).toEqual(expect.arrayContaining(sequenceIds));
    // The other shards stayed where they were.
    expect(await settledOnExcept([a, b, d], shard)).toBe(true);
    expect(await admin.unpin(shard)).toBe(true);
    await until(() => a.placement.owned().has(shard), 15_000);
    expect((await owners()).get(shard)).toEqual(["node-a", epoch + 2]);
  });
});

/** As {@link settledOn}, for every shard but `except`. */
async function settledOnExcept(live: readonly Member[], except: string): Promise<boolean> {
  const expected = placeShards({ shards, nodes: live.map((m) => m.name) });
  const now = await owners();
  return shards.every((s) => s === except || now.get(s)?.[0] === expected.get(s));
}
