import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { DeterministicStateStore } from "../contracts/stores.js";
import { DeterministicResourceLeaseCoordinator } from "../deterministic/coordinator.js";
import { DETERMINISTIC_EFFECT_KIND } from "../deterministic/record-kinds.js";
import { encodeReplicationEvent } from "../wire/event.js";
import { assertSame } from "./conformance-support.js";
import { eventsOfEveryType } from "./events-of-every-type.js";

/**
 * A failover replay across two instances of one store (two dispatcher nodes): node A records the first half of the
 * events (running their effects) and dies; node B replays the whole log, then replays it again; then both apply it at
 * once. Each effect runs once, on the node that recorded it, and both read the same stored record. Internal to the
 * conformance suite.
 */
export async function checkFailoverReplay(nodeA: DeterministicStateStore, nodeB: DeterministicStateStore) {
  const events = eventsOfEveryType(1);
  const ran: string[] = [];
  const execute = (node: string) => async (event: ResourceLeaseReplicationEvent) => {
    ran.push(`${node}:${event.sequenceNumber}`);
  };
  const a = new DeterministicResourceLeaseCoordinator({ stateStore: nodeA });
  const b = new DeterministicResourceLeaseCoordinator({ stateStore: nodeB });
  const half = Math.floor(events.length / 2);
  for (const event of events.slice(0, half)) {
    strictEqual((await a.record(event, { execute: execute("A") })).recorded, true, `A records ${event.eventType}`);
  }
  const replay: boolean[] = [];
  for (const event of events) replay.push((await b.record(event, { execute: execute("B") })).recorded);
  deepStrictEqual(
    replay,
    events.map((_, i) => i >= half),
    "B records exactly the events A did not",
  );
  for (const event of events) {
    strictEqual((await b.record(event, { execute: execute("B") })).recorded, false, "a second replay records nothing");
  }
  for (const event of events) await b.apply(event);
  await Promise.all(events.flatMap((event) => [a.apply(event), b.apply(event)]));

  deepStrictEqual(
    ran,
    events.map((e, i) => `${i < half ? "A" : "B"}:${e.sequenceNumber}`),
    "each effect ran once, on the node that recorded it",
  );
  for (const event of events) {
    const key = `resourcelease.replication/seq/${event.sequenceNumber}`;
    const [fromA, fromB] = [await nodeA.get(key), await nodeB.get(key)];
    strictEqual(fromA?.kind, DETERMINISTIC_EFFECT_KIND, `the record of event ${event.sequenceNumber}`);
    assertSame(fromB, fromA, `both nodes read the record of event ${event.sequenceNumber}`);
    const stored = JSON.parse(new TextDecoder().decode(fromA?.payload));
    deepStrictEqual(stored, JSON.parse(JSON.stringify(encodeReplicationEvent(event))), "the stored event");
  }
}
