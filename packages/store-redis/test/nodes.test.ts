import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import {
  DETERMINISTIC_EFFECT_KIND,
  DeterministicResourceLeaseCoordinator,
  type DeterministicStateStore,
} from "@omnirelay/core/deterministic";
import { eventsOfEveryType } from "@omnirelay/core/testing";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { RedisDeterministicStateStore } from "../src/index.js";
import { deleteRunKeys, freshPrefix, openStore, record } from "./helpers.js";

// Two dispatcher nodes sharing one Redis: each has its own store instance and connection on the same prefix.
const opened: RedisDeterministicStateStore[] = [];
async function twoNodes(): Promise<[RedisDeterministicStateStore, RedisDeterministicStateStore]> {
  const prefix = freshPrefix();
  const nodes = [(await openStore(prefix)).store, (await openStore(prefix)).store] as const;
  opened.push(...nodes);
  return [nodes[0], nodes[1]];
}
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});
afterAll(async () => {
  await deleteRunKeys();
});

describe("two nodes on one Redis", () => {
  it("race tryAdd on the same key from concurrent promises: exactly one wins, every round", async () => {
    const nodes = await twoNodes();
    const winsByNode = [0, 0];
    for (let round = 0; round < 200; round++) {
      const key = `race/${round}`;
      // The node that sends first changes from round to round (Redis orders the two connections' commands).
      const contenders = Array.from({ length: 6 }, (_, i) => ({ node: (i + round) % 2, text: `contender-${i}` }));
      const results = await Promise.all(contenders.map((c) => nodes[c.node]!.tryAdd(key, record(c.text))));
      const winners = contenders.filter((_, i) => results[i]);
      expect(winners.length, `round ${round}`).toBe(1);
      winsByNode[winners[0]!.node]!++;
      for (const node of nodes) expect(await node.get(key), `round ${round}`).toEqual(record(winners[0]!.text));
    }
    // Both nodes won rounds: both connections took part.
    expect(winsByNode[0]).toBeGreaterThan(0);
    expect(winsByNode[1]).toBeGreaterThan(0);
  });

  it("a coordinator on each node records every event once when the log is applied twice (failover replay)", async () => {
    const [nodeA, nodeB] = await twoNodes();
    await expectEachEventOnce(nodeA, nodeB);
  });
});

/**
 * Node A records the first half of the events (running their effects) and dies; node B takes over and replays the
 * whole log, then replays it again; then both apply it at once. Each effect runs once, on the node that recorded it.
 */
async function expectEachEventOnce(nodeA: DeterministicStateStore, nodeB: DeterministicStateStore) {
  const events = eventsOfEveryType(1);
  expect(events.length).toBeGreaterThanOrEqual(11);
  const ran: string[] = [];
  const execute = (node: string) => async (event: ResourceLeaseReplicationEvent) => {
    ran.push(`${node}:${event.sequenceNumber}`);
  };
  const a = new DeterministicResourceLeaseCoordinator({ stateStore: nodeA });
  const b = new DeterministicResourceLeaseCoordinator({ stateStore: nodeB });
  const half = Math.floor(events.length / 2);
  for (const event of events.slice(0, half))
    expect((await a.record(event, { execute: execute("A") })).recorded).toBe(true);

  const replay = [];
  for (const event of events) replay.push((await b.record(event, { execute: execute("B") })).recorded);
  expect(replay).toEqual(events.map((_, i) => i >= half));
  for (const event of events) expect((await b.record(event, { execute: execute("B") })).recorded).toBe(false);
  for (const event of events) await b.apply(event);
  await Promise.all(events.flatMap((event) => [a.apply(event), b.apply(event)]));

  expect(ran).toEqual(events.map((e, i) => `${i < half ? "A" : "B"}:${e.sequenceNumber}`));
  // The effect of each event is stored once, with the event itself, and both nodes read the same record.
  for (const event of events) {
    const key = `resourcelease.replication/seq/${event.sequenceNumber}`;
    const [fromA, fromB] = [await nodeA.get(key), await nodeB.get(key)];
    expect(fromA?.kind).toBe(DETERMINISTIC_EFFECT_KIND);
    expect(fromB).toEqual(fromA);
    const stored = JSON.parse(new TextDecoder().decode(fromA!.payload));
    expect(stored).toEqual(JSON.parse(JSON.stringify(encodeReplicationEvent(event))));
  }
}
