import { describe, expect, it } from "vitest";
import type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
import { InMemoryResourceLeaseReplicator } from "../replication/in-memory-replicator.js";
import { eventOfEveryType, makeEvent } from "../replication/test-fixtures.js";
import { FakeClock } from "../testing/fake-clock.js";
import { decodeReplicationEvent } from "../wire/event.js";
import { DeterministicResourceLeaseCoordinator } from "./coordinator.js";
import { InMemoryDeterministicStateStore } from "./in-memory-state-store.js";

const decoder = new TextDecoder();

function storedEvent(record: DeterministicRecord | undefined) {
  if (record === undefined) throw new Error("no record");
  return decodeReplicationEvent(JSON.parse(decoder.decode(record.payload)));
}

describe("DeterministicResourceLeaseCoordinator", () => {
  it("records every event under its own sequence number with the full event as payload", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const clock = new FakeClock();
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore, clock });
    const events = eventOfEveryType().slice(0, 3);
    for (const event of events) {
      expect(await coordinator.record(event)).toEqual({
        recorded: true,
        effectId: `resourcelease.replication/seq/${event.sequenceNumber}`,
      });
    }
    for (const event of events) {
      const effect = await stateStore.get(`resourcelease.replication/seq/${event.sequenceNumber}`);
      expect(effect).toMatchObject({ kind: "omnirelay.effect", version: 1, recordedAt: clock.now() });
      expect(storedEvent(effect)).toEqual(event);
      const gate = await stateStore.get(`resourcelease.replication.${event.sequenceNumber}`);
      expect(gate).toMatchObject({ kind: "omnirelay.version", version: 1 });
      expect(JSON.parse(decoder.decode(gate?.payload))).toEqual({ version: 1 });
    }
    expect(stateStore.size).toBe(6);
  });

  it("executes once when the same event is recorded twice", async () => {
    const coordinator = new DeterministicResourceLeaseCoordinator({
      stateStore: new InMemoryDeterministicStateStore(),
    });
    const executed: number[] = [];
    const execute = async (event: { sequenceNumber: number }) => void executed.push(event.sequenceNumber);
    const event = makeEvent(5);
    expect((await coordinator.record(event, { execute })).recorded).toBe(true);
    expect((await coordinator.record(event, { execute })).recorded).toBe(false);
    await coordinator.record(makeEvent(6), { execute });
    expect(executed).toEqual([5, 6]);
  });

  it("executes at most once across coordinators racing on a shared store", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const executed: string[] = [];
    const coordinators = ["a", "b", "c"].map(
      (name) => [name, new DeterministicResourceLeaseCoordinator({ stateStore })] as const,
    );
    const results = await Promise.all(
      coordinators.map(([name, c]) =>
        c.record(makeEvent(9), {
          execute: async () => {
            executed.push(name);
          },
        }),
      ),
    );
    expect(executed).toHaveLength(1);
    expect(results.filter((r) => r.recorded)).toHaveLength(1);
  });

  it("refuses events without a sequence number instead of keying them as 0", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore });
    for (const seq of [0, -1, 1.5, Number.NaN]) {
      await expect(coordinator.record(makeEvent(seq))).rejects.toMatchObject({
        status: "invalid-argument",
        code: "resourcelease.deterministic.sequence_required",
      });
    }
    expect(stateStore.size).toBe(0);
  });

  it("accepts an existing gate within [min, max] and rejects others", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const gate = (kind: string, version: number): DeterministicRecord => ({
      kind,
      version,
      payload: new Uint8Array(),
      recordedAt: 0,
    });
    await stateStore.set("cap.1", gate("omnirelay.version", 2));
    await stateStore.set("cap.2", gate("omnirelay.version", 4));
    await stateStore.set("cap.3", gate("hugo.version", 2));
    const coordinator = new DeterministicResourceLeaseCoordinator({
      stateStore,
      changeId: "cap",
      minVersion: 1,
      maxVersion: 3,
    });
    await coordinator.record(makeEvent(1));
    expect((await stateStore.get("cap/seq/1"))?.version).toBe(2);
    for (const seq of [2, 3]) {
      await expect(coordinator.record(makeEvent(seq))).rejects.toMatchObject({
        status: "failed-precondition",
        code: "resourcelease.deterministic.version_conflict",
        metadata: { key: `cap.${seq}` },
      });
      expect(await stateStore.get(`cap/seq/${seq}`)).toBeUndefined();
    }
    await coordinator.record(makeEvent(4));
    expect((await stateStore.get("cap.4"))?.version).toBe(3);
  });

  it("re-reads the gate after losing the insert race", async () => {
    const inner = new InMemoryDeterministicStateStore();
    await inner.set("resourcelease.replication.1", {
      kind: "omnirelay.version",
      version: 1,
      payload: new Uint8Array(),
      recordedAt: 0,
    });
    let staleReads = 1;
    // The first read misses the gate another process just wrote.
    const racing: DeterministicStateStore = {
      get: async (key) => (staleReads-- > 0 ? undefined : inner.get(key)),
      set: (key, record) => inner.set(key, record),
      tryAdd: (key, record) => inner.tryAdd(key, record),
    };
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore: racing });
    expect((await coordinator.record(makeEvent(1))).recorded).toBe(true);
    expect((await inner.get("resourcelease.replication/seq/1"))?.version).toBe(1);
  });

  it("refuses an effect id held by a record of another kind", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    await stateStore.set("resourcelease.replication/seq/1", {
      kind: "something.else",
      version: 1,
      payload: new Uint8Array(),
      recordedAt: 0,
    });
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore });
    await expect(coordinator.record(makeEvent(1))).rejects.toMatchObject({
      code: "resourcelease.deterministic.effect_conflict",
    });
  });

  it("does not retry an effect whose execute failed after the claim", async () => {
    const coordinator = new DeterministicResourceLeaseCoordinator({
      stateStore: new InMemoryDeterministicStateStore(),
    });
    let runs = 0;
    const execute = async () => {
      runs++;
      throw new Error("side effect failed");
    };
    await expect(coordinator.record(makeEvent(1), { execute })).rejects.toThrow("side effect failed");
    expect(await coordinator.record(makeEvent(1), { execute })).toEqual({
      recorded: false,
      effectId: "resourcelease.replication/seq/1",
    });
    expect(runs).toBe(1);
  });

  it("uses a custom effect id and rejects a blank one", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const coordinator = new DeterministicResourceLeaseCoordinator({
      stateStore,
      effectIdFactory: (e) => (e.sequenceNumber === 2 ? " " : `fx-${e.peerId}-${e.sequenceNumber}`),
    });
    expect((await coordinator.record(makeEvent(1, "Enqueue", { peerId: "w" }))).effectId).toBe("fx-w-1");
    expect(await stateStore.get("fx-w-1")).toBeDefined();
    await expect(coordinator.record(makeEvent(2))).rejects.toMatchObject({
      code: "resourcelease.deterministic.key_required",
    });
  });

  it("records as a sink behind the in-memory replicator", async () => {
    const stateStore = new InMemoryDeterministicStateStore();
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore });
    const replicator = new InMemoryResourceLeaseReplicator({ sinks: [coordinator] });
    const events = eventOfEveryType();
    await replicator.publish(events);
    for (const event of events) {
      expect(storedEvent(await stateStore.get(`resourcelease.replication/seq/${event.sequenceNumber}`))).toEqual(event);
    }
    await expect(coordinator.record(makeEvent(1), { signal: AbortSignal.abort() })).rejects.toMatchObject({
      status: "cancelled",
    });
  });
});
