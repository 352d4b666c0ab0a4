import { describe, expect, it } from "vitest";
import { DeterministicResourceLeaseCoordinator } from "../deterministic/coordinator.js";
import { InMemoryDeterministicStateStore } from "../deterministic/in-memory-state-store.js";
import { encodeReplicationEvent } from "../wire/event.js";
import { isReplayEvent, LEASE_REPLAY_METADATA, tagReplay, withoutReplayTag } from "./replay-tag.js";
import { eventOfEveryType } from "./test-fixtures.js";

describe("the lease.replay tag", () => {
  it("tags a copy, never the stored event, and reads back true, false or absent", () => {
    for (const event of eventOfEveryType()) {
      const before = JSON.stringify(event);
      const replayed = tagReplay(event, true);
      const live = tagReplay(event, false);
      expect(replayed.metadata[LEASE_REPLAY_METADATA]).toBe("true");
      expect(live.metadata[LEASE_REPLAY_METADATA]).toBe("false");
      expect([isReplayEvent(replayed), isReplayEvent(live), isReplayEvent(event)]).toEqual([true, false, undefined]);
      expect(JSON.stringify(event)).toBe(before);
      // Everything but the tag is the event's own.
      expect(withoutReplayTag(replayed)).toEqual(event);
      expect(withoutReplayTag(event)).toBe(event);
    }
  });

  it("is not part of what the deterministic coordinator records: a replayed and a live copy record the same bytes", async () => {
    const [event] = eventOfEveryType();
    const stores = [new InMemoryDeterministicStateStore(), new InMemoryDeterministicStateStore()];
    await new DeterministicResourceLeaseCoordinator({ stateStore: stores[0]! }).record(tagReplay(event!, true));
    await new DeterministicResourceLeaseCoordinator({ stateStore: stores[1]! }).record(tagReplay(event!, false));
    const key = `resourcelease.replication/seq/${event!.sequenceNumber}`;
    const [a, b] = await Promise.all(stores.map((s) => s.get(key)));
    const text = new TextDecoder().decode(a!.payload);
    expect(text).toBe(new TextDecoder().decode(b!.payload));
    expect(JSON.parse(text)).toEqual(encodeReplicationEvent(event!));
    expect(text).not.toContain(LEASE_REPLAY_METADATA);
  });
});
