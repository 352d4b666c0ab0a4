import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCodes, type ResourceLeaseGrant, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { decodeReplicationEvent } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { SqliteDeterministicStateStore, SqliteResourceLeaseReplicator } from "../src/index.js";
import { codeOf, prng, type Running, startWith } from "./drill-helpers.js";
import { item, tempDir } from "./helpers.js";

// The seed's drill 3 (split-brain avoidance): two shards take unique request ids at once; one of them is killed -9
// mid-processing again and again and replays its log on restart. Each node's verifying sink (the deterministic
// coordinator over a SQLite state store, fed the committed log tagged lease.replay) must hold every request id exactly
// once per transition, across both nodes, and a lease handed out before a kill is fenced after it.

interface Effect {
  readonly seq: number;
  readonly type: string;
  readonly id: string;
  readonly replay: boolean | undefined;
}

interface Node {
  readonly name: string;
  readonly log: string;
  readonly state: string;
  readonly effects: string;
}

function nodeIn(dir: string, name: string): Node {
  return {
    name,
    log: join(dir, `${name}.db`),
    state: join(dir, `${name}-state.db`),
    effects: join(dir, `${name}.jsonl`),
  };
}

const startNode = (node: Node, state = node.state, effects = node.effects): Promise<Running> =>
  startWith({ effects: "json" }, node.log, state, effects);

function effectsOf(path: string): Effect[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Effect);
}

async function stop(running: Running): Promise<void> {
  running.child.kill("SIGKILL");
  await running.exited;
  await running.client.close();
}

interface Recorded {
  readonly seq: number;
  readonly type: string;
  readonly id: string;
}

const recordOf = (e: ResourceLeaseReplicationEvent): Recorded => ({
  seq: e.sequenceNumber,
  type: e.eventType,
  id: String((e.item ?? e).payload?.resourceId),
});

/** The log's events. */
async function logged(path: string): Promise<Recorded[]> {
  const log = await SqliteResourceLeaseReplicator.open({ path });
  const out: Recorded[] = [];
  for await (const e of log.read(1)) out.push(recordOf(e));
  await log.close();
  return out;
}

/** The events the coordinator recorded in the state store at `path`, for sequence numbers 1..`upTo`. */
async function recorded(path: string, upTo: number): Promise<Recorded[]> {
  await using store = await SqliteDeterministicStateStore.open({ path });
  const out: Recorded[] = [];
  for (let seq = 1; seq <= upTo; seq++) {
    const effect = await store.get(`resourcelease.replication/seq/${seq}`);
    if (effect) out.push(recordOf(decodeReplicationEvent(JSON.parse(new TextDecoder().decode(effect.payload)))));
  }
  return out;
}

/** Enqueue, lease, complete (or hold the grant) on one node until `alive()` is false; records what was acknowledged. */
async function load(
  running: Running,
  ids: { next: () => string; acked: Set<string>; held: ResourceLeaseGrant[] },
  alive: () => boolean,
): Promise<void> {
  while (alive()) {
    try {
      const id = ids.next();
      await running.client.enqueue(item(id));
      ids.acked.add(id);
      const [grant] = await running.client.lease({ peerId: "w" });
      if (!grant) continue;
      // Held (never completed): the first grant of a round, so every round that leases leaves one for the restarted
      // owner to fence however slow the machine is, and then every fifth id, up to three.
      const fifth = Number(grant.payload.resourceId.slice(2)) % 5 === 0;
      if (ids.held.length === 0 || (ids.held.length < 3 && fifth)) ids.held.push(grant);
      else await running.client.complete(grant.ownershipToken);
    } catch (error) {
      if (alive()) throw error;
    }
  }
}

/** Leases and completes everything left on a node. */
async function drain(running: Running): Promise<void> {
  for (;;) {
    const grants = await running.client.lease({ maxItems: 100, peerId: "drain" });
    if (grants.length === 0) return;
    for (const g of grants) await running.client.complete(g.ownershipToken);
  }
}

describe("split-brain drill: two shards, one killed -9 mid-processing and replayed", () => {
  it("every request id reaches the downstream sinks exactly once; replayed deliveries are tagged lease.replay=true", async () => {
    const started = performance.now();
    const dir = tempDir();
    const [a, b] = [nodeIn(dir, "a"), nodeIn(dir, "b")];
    const seed = Date.now() % 1_000_000;
    const rand = prng(seed);
    let serial = 0;
    const acked = new Set<string>();
    const held: ResourceLeaseGrant[] = [];
    // Request ids are unique over the whole drill; a shard owns the ids it was given.
    const next = (shard: number) => () => `${shard}-${serial++}`;
    const nodeB = await startNode(b);
    let bAlive = true;
    const bHeld: ResourceLeaseGrant[] = [];
    const bLoad = load(nodeB, { next: next(1), acked, held: bHeld }, () => bAlive);
    let fenced = 0;
    const recoveryMs: number[] = [];
    for (let round = 0; round < 5; round++) {
      const t0 = performance.now();
      const nodeA = await startNode(a);
      recoveryMs.push(performance.now() - t0);
      // The restart replayed the whole log to the sink (all tagged replay) before serving, and nothing live yet.
      if (round > 0) {
        expect(nodeA.delivered.replay, `seed ${seed}`).toBeGreaterThan(0);
        expect(nodeA.delivered.live).toBe(0);
      }
      // A lease from before the kill belongs to nobody now: the restarted owner fences its token.
      for (const grant of held.splice(0)) {
        const error = await nodeA.client.complete(grant.ownershipToken).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(codeOf(error), `seed ${seed}`).toBe(ErrorCodes.resourceLease.leaseFenced);
        fenced++;
      }
      let alive = true;
      const aLoad = load(nodeA, { next: next(0), acked, held }, () => alive);
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.floor(rand() * 250)));
      alive = false;
      await stop(nodeA); // mid-processing: calls are in flight
      await aLoad;
    }
    bAlive = false;
    await bLoad;
    // Both nodes finish their work, then each restarts once more so its sink records whatever the kills left over.
    const lastA = await startNode(a);
    await drain(lastA);
    for (const grant of bHeld) await nodeB.client.complete(grant.ownershipToken); // B never died: still its leases
    await drain(nodeB);
    await stop(lastA);
    await stop(nodeB);
    for (const node of [a, b]) await stop(await startNode(node));

    // The verifying sink: what each node's coordinator recorded in its state store, one record per sequence number.
    // (Its side effect — the line in the effects file — runs at most once: a kill between the claim and the write
    // loses the line, never doubles it.)
    const key = (e: { seq: number; type: string; id?: string }) => `${e.seq} ${e.type} ${e.id}`;
    const perId = new Map<string, string[]>();
    for (const node of [a, b]) {
      const log = await logged(node.log);
      const sink = await recorded(node.state, log.length);
      expect(sink.map(key)).toEqual(log.map(key)); // each committed event recorded once, as the log holds it
      for (const e of sink) {
        if (e.type !== "Enqueue" && e.type !== "Completed") continue;
        expect(e.id.startsWith(node === a ? "0-" : "1-"), `request ${e.id} on shard ${node.name}`).toBe(true);
        perId.set(e.id, [...(perId.get(e.id) ?? []), e.type]);
      }
      const effects = effectsOf(node.effects);
      expect(new Set(effects.map((e) => e.seq)).size).toBe(effects.length);
      expect(effects.every((e) => typeof e.replay === "boolean")).toBe(true);
    }
    // Every acknowledged request id, and every id at all, was enqueued once and completed once, on its own shard.
    for (const id of acked) expect(perId.get(id), `request ${id} (seed ${seed})`).toEqual(["Enqueue", "Completed"]);
    for (const [id, types] of perId) expect(types.sort(), `request ${id}`).toEqual(["Completed", "Enqueue"]);
    expect(fenced).toBeGreaterThan(0);
    expect(effectsOf(a.effects).some((e) => e.replay === false)).toBe(true);

    // A sink that starts from nothing gets the whole log as replay (every delivery tagged true), in order.
    for (const node of [a, b]) {
      const fresh = { state: join(dir, `${node.name}-fresh.db`), effects: join(dir, `${node.name}-fresh.jsonl`) };
      const replayed = await startNode(node, fresh.state, fresh.effects);
      await stop(replayed);
      const again = effectsOf(fresh.effects);
      expect(again.every((e) => e.replay === true)).toBe(true);
      expect(again.map(key)).toEqual((await logged(node.log)).map(key));
    }
    console.log(
      `split-brain drill: ${acked.size} acknowledged requests, ${fenced} stale leases fenced, restarts ${recoveryMs.map((ms) => Math.round(ms)).join("/")} ms, ${Math.round(performance.now() - started)} ms in all`,
    );
  }, 30_000);
});
