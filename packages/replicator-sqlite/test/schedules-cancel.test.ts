import { ResourceLeaseQueue, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue } from "../src/index.js";
import { decodeSnapshotPart, emptyLists, snapshotParts } from "../src/snapshot-binary.js";
import { eventsOf, item, rejection, tempDb } from "./helpers.js";

const MINUTE = 60_000;

const slotsOf = (events: readonly ResourceLeaseReplicationEvent[]) =>
  events.filter((e) => e.metadata["schedule.slot"] !== undefined).map((e) => Number(e.metadata["schedule.slot"]));

describe("schedules and cancels in the SQLite log", () => {
  it("a schedule and a cancelled lease survive the log, a snapshot and a restart; no slot fires twice", async () => {
    const path = tempDb();
    const clock = new FakeClock();
    const t0 = clock.now();
    const open = () =>
      openDurableResourceLeaseQueue({
        path,
        snapshotEveryEvents: 3,
        queueOptions: { clock, leaseDurationMs: 10 * MINUTE },
      });
    const first = await open();
    await first.queue.schedules.set({
      id: "tick",
      cron: "* * * * *",
      timezone: "Europe/Berlin",
      payload: item("cron", { body: new Uint8Array([0, 1, 255]), attributes: { k: "v" } }),
      backfill: "all",
      backfillWindowMs: 10 * MINUTE,
    });
    await first.queue.enqueue(item("x"));
    const [held] = await first.queue.lease();
    await first.queue.cancel({ sequenceId: held!.sequenceId });
    clock.advance(3 * MINUTE);
    const live = first.queue.snapshot();
    expect(live.schedules).toHaveLength(1);
    expect(live.cancelledLeases).toHaveLength(1);
    await first.close(); // stopped after slot 3

    clock.advance(2 * MINUTE + 30_000); // down for slots 4 and 5
    const second = await open();
    expect(second.snapshotSequence).toBeGreaterThan(0); // rebuilt from a snapshot, not only events
    clock.advance(0);
    clock.advance(30_000); // slot 6, on time
    // The holder of the cancelled lease is still told so after the restart (its lease had 10 minutes), and the
    // refusal is logged as an audit-only LeaseRefused event.
    expect((await rejection(second.queue.complete(held!.ownershipToken))).code).toBe("resourcelease.lease.cancelled");
    // The timer's events are committed by the next group commit: wait for the log to hold them all.
    while ((await second.replicator.lastSequence()) < second.queue.stats().lastEventSequence) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const events = await eventsOf(second.replicator);
    expect(slotsOf(events).map((t) => (t - t0) / MINUTE)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(second.queue.schedules.list()).toMatchObject([{ id: "tick", lastSlotAt: t0 + 6 * MINUTE }]);
    expect([...second.queue.schedules.list()[0]!.payload.body!]).toEqual([0, 1, 255]);
    expect(events.filter((e) => e.eventType === "LeaseRefused")).toMatchObject([
      { ownership: held!.ownershipToken, metadata: { "refused.verb": "complete" } },
    ]);
    // Rebuild from the whole log == the live queue.
    const replayed = await ResourceLeaseQueue.rebuild(events, { clock }, { activeLeases: "keep" });
    expect(replayed.snapshot()).toEqual(second.queue.snapshot());
    await replayed.close();
    await second.close();
  });

  it("binary snapshot parts round-trip schedules and cancelled leases, and keep older parts' bytes", () => {
    const schedule = {
      id: "s",
      cron: "*/5 * * * *",
      timezone: "UTC",
      payload: item(1),
      backfill: "skip" as const,
      backfillWindowMs: 1000,
    };
    const base = {
      version: 1 as const,
      lastEventSequence: 9,
      lastFencingToken: 2,
      lastSequenceId: 3,
      mode: "running" as const,
      pending: [{ payload: item(1), sequenceId: 1, attempt: 1, enqueuedAt: 5 }],
      delayed: [],
      active: [],
      deadLetters: [],
      requestIds: [],
      reusableIds: [],
    };
    const full = {
      ...base,
      schedules: [{ schedule, upsertedAt: 10, firedThrough: 20, lastSlotAt: 20 }],
      cancelledLeases: [["lease-1", 2, 2, 99] as const],
    };
    const lists = emptyLists();
    for (const part of snapshotParts(full, 1)) decodeSnapshotPart(part, lists);
    expect(lists.schedules).toEqual(full.schedules);
    expect(lists.cancelledLeases).toEqual(full.cancelledLeases);
    // Without schedules or cancelled leases, a part is what earlier versions wrote (no sections of kinds 6 and 7).
    const [plain] = [...snapshotParts({ ...base, schedules: [], cancelledLeases: [] }, 100)];
    const [older] = [...snapshotParts(base, 100)];
    expect(plain).toEqual(older);
  });
});
