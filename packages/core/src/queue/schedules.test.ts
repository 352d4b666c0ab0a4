import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { ResourceLeaseQueueOptions } from "./options.js";
import { ResourceLeaseQueue } from "./queue.js";
import { SCHEDULE_ON_TIME_MS } from "./schedules.js";
import { fixture, item, rejection } from "./test-helpers.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1); // FakeClock's start: a whole minute

/** The slot times (ms) of the items scheduled so far, from their request ids. */
function firedSlots(events: readonly ResourceLeaseReplicationEvent[], id = "tick"): number[] {
  return events
    .filter((e) => e.eventType === "Enqueue" && e.metadata["schedule.id"] === id)
    .map((e) => Date.parse(e.item!.payload.requestId!.slice(`schedule:${id}:`.length)));
}

/** A durable log in memory: what a queue published, for a rebuild to read. */
function memoryLog() {
  const log: ResourceLeaseReplicationEvent[] = [];
  return {
    log,
    replicator: {
      async publish(batch: readonly ResourceLeaseReplicationEvent[]) {
        log.push(...structuredClone(batch));
      },
    },
  };
}

async function restart(log: ResourceLeaseReplicationEvent[], options: ResourceLeaseQueueOptions) {
  return ResourceLeaseQueue.rebuild(structuredClone(log), options);
}

describe("cron schedules", () => {
  it("fires each slot once, on time, as an enqueue with the slot's request id", async () => {
    const { queue, events, clock } = fixture();
    const info = await queue.schedules.set({ id: "tick", cron: "* * * * *", payload: item("t", { requestId: "x" }) });
    expect(info).toMatchObject({ id: "tick", timezone: "UTC", backfill: "skip", nextSlotAt: T0 + MINUTE });
    clock.advance(MINUTE - 1);
    expect(firedSlots(events)).toEqual([]);
    clock.advance(1);
    expect(firedSlots(events)).toEqual([T0 + MINUTE]);
    clock.advance(3 * MINUTE);
    expect(firedSlots(events)).toEqual([1, 2, 3, 4].map((n) => T0 + n * MINUTE));
    const [g] = await queue.lease();
    expect(g!.payload.requestId).toBe(`schedule:tick:${new Date(T0 + MINUTE).toISOString()}`);
    expect(g!.payload.resourceId).toBe("t");
    expect(queue.schedules.list()[0]).toMatchObject({ lastSlotAt: T0 + 4 * MINUTE, nextSlotAt: T0 + 5 * MINUTE });
  });

  it("refuses bad definitions with coded errors", async () => {
    const { queue } = fixture();
    const base = { id: "s", cron: "* * * * *", payload: item(1) };
    const cases: Array<[object, string]> = [
      [{ ...base, cron: "not a cron" }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ ...base, cron: "0 0 * * * * 2030" }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ ...base, cron: "" }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ ...base, cron: `0 0 * * * ${" ".repeat(250)}` }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ ...base, cron: 5 }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ ...base, timezone: "Mars/Olympus" }, ErrorCodes.resourceLease.scheduleTimezoneInvalid],
      [{ ...base, cron: "0 0 30 2 *" }, ErrorCodes.resourceLease.scheduleNeverFires],
      [{ ...base, cron: "* * * * * *" }, ErrorCodes.resourceLease.scheduleTooFrequent],
      [{ ...base, cron: "*/5 * * * * *" }, ErrorCodes.resourceLease.scheduleTooFrequent],
      [{ ...base, id: "has space" }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ ...base, id: "x".repeat(129) }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ ...base, backfill: "sometimes" }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ ...base, backfillWindowMs: 10 }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ ...base, backfillWindowMs: 8 * 86_400_000 }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ id: "s", cron: "* * * * *" }, ErrorCodes.resourceLease.payloadRequired],
      // Accepted once, never applied, and lost at the next restart (the log does not keep it in a schedule).
      [{ ...base, payload: { ...item(1), delayMs: 3_600_000 } }, ErrorCodes.resourceLease.scheduleInvalid],
    ];
    for (const [bad, code] of cases) {
      const err = await rejection(queue.schedules.set(bad as never));
      expect([err.status, err.code], JSON.stringify(bad)).toEqual(["invalid-argument", code]);
    }
    expect((await rejection(queue.schedules.remove("nope"))).code).toBe(ErrorCodes.resourceLease.scheduleNotFound);
    // An id no schedule could have is a caller's mistake, named as such, not "not found".
    for (const bad of ["has space", "-leading", "x".repeat(129), ""]) {
      expect((await rejection(queue.schedules.remove(bad))).code, bad).toBe(ErrorCodes.resourceLease.scheduleInvalid);
    }
    // Every ten seconds is the floor, and allowed.
    await queue.schedules.set({ ...base, cron: "*/10 * * * * *" });
    expect(queue.schedules.list()).toHaveLength(1);
  });

  it("a schedule across both daylight-saving changes of a zone fires each slot once", async () => {
    const clock = new FakeClock(Date.UTC(2026, 2, 28, 0, 0));
    const { queue, events } = fixture({ clock, capacity: 100_000 });
    await queue.schedules.set({ id: "tick", cron: "30 2 * * *", timezone: "Europe/Berlin", payload: item(1) });
    clock.set(Date.UTC(2026, 2, 31));
    // 28 March 02:30 CET; 29 March has no 02:30 (the clocks jump to 03:00): once at 03:00 CEST; then 02:30 CEST.
    expect(firedSlots(events).map((t) => new Date(t).toISOString())).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T00:30:00.000Z",
    ]);
    clock.set(Date.UTC(2026, 9, 24, 12));
    await queue.schedules.set({ id: "hourly", cron: "0 * * * *", timezone: "Europe/Berlin", payload: item(2) });
    const before = firedSlots(events).length;
    clock.set(Date.UTC(2026, 9, 26, 12));
    // 25 October: 02:30 happens twice (CEST, then CET); it fires once.
    expect(
      firedSlots(events)
        .slice(before)
        .map((t) => new Date(t).toISOString()),
    ).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
    const hourly = firedSlots(events, "hourly");
    expect(new Set(hourly).size).toBe(hourly.length);
    const byDay = hourly.filter((t) => t >= Date.UTC(2026, 9, 24, 22) && t < Date.UTC(2026, 9, 25, 23)).length;
    // A wildcard hour follows real time: the local day of 25 October has 25 hours, 02:00 CEST and 02:00 CET included.
    expect(byDay).toBe(25);
    expect(hourly).toEqual(expect.arrayContaining([Date.UTC(2026, 9, 25, 0), Date.UTC(2026, 9, 25, 1)]));
  });

  it("a restart in the middle fires no slot twice, and a restart at the same slot fires none", async () => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const first = new ResourceLeaseQueue({ clock, replicator });
    await first.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1) });
    clock.advance(2 * MINUTE);
    await first.close(); // killed just after the second slot fired
    const second = await restart(log, { clock, replicator });
    clock.advance(0);
    expect(firedSlots(log)).toEqual([T0 + MINUTE, T0 + 2 * MINUTE]);
    clock.advance(MINUTE);
    expect(firedSlots(log)).toEqual([1, 2, 3].map((n) => T0 + n * MINUTE));
    expect(second.stats().pendingCount).toBe(3);
  });

  it("two queues on the same log at the same slot: the one that rebuilt after the other's firing adds nothing", async () => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const a = new ResourceLeaseQueue({ clock, replicator });
    await a.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1) });
    const beforeSlot = structuredClone(log);
    clock.advance(MINUTE);
    expect(firedSlots(log)).toEqual([T0 + MINUTE]);
    // The loser of the race replayed the log up to before the slot, then the winner's slot event arrived.
    const b = await ResourceLeaseQueue.rebuild(beforeSlot, { clock, idempotencyWindowMs: 0 }, { activeLeases: "keep" });
    await b.close();
    const taken = await restart(log, { clock, idempotencyWindowMs: 0 });
    clock.advance(0);
    expect(taken.stats().pendingCount).toBe(1); // watermark, not the request-id window, keeps the slot single
    await a.close();
  });

  it.each([
    ["skip", [5, 30]],
    ["latest", [5, 25, 30]],
    ["all", [5, 10, 15, 20, 25, 30]],
  ] as const)("backfill %s: after missing four slots, back two minutes after the last", async (backfill, expected) => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const before = new ResourceLeaseQueue({ clock, replicator });
    await before.schedules.set({ id: "tick", cron: "*/5 * * * *", payload: item(1), backfill });
    clock.advance(5 * MINUTE);
    await before.close(); // down for the slots at 10, 15, 20 and 25 minutes
    clock.advance(22 * MINUTE);
    expect(27 * MINUTE - 25 * MINUTE).toBeGreaterThan(SCHEDULE_ON_TIME_MS); // slot 25 is missed, not late
    const after = await restart(log, { clock, replicator });
    clock.advance(0);
    clock.advance(3 * MINUTE); // the slot at 30 minutes, on time
    expect(firedSlots(log).map((t) => (t - T0) / MINUTE)).toEqual(expected);
    expect(after.stats().pendingCount).toBe(expected.length);
  });

  it("a slot less than a minute late still fires under skip", async () => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const before = new ResourceLeaseQueue({ clock, replicator });
    await before.schedules.set({ id: "tick", cron: "*/5 * * * *", payload: item(1) });
    await before.close();
    clock.advance(5 * MINUTE + SCHEDULE_ON_TIME_MS / 2);
    await restart(log, { clock, replicator });
    clock.advance(0);
    expect(firedSlots(log).map((t) => (t - T0) / MINUTE)).toEqual([5]);
  });

  it("backfill all stays within its window", async () => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const before = new ResourceLeaseQueue({ clock, replicator });
    await before.schedules.set({
      id: "tick",
      cron: "* * * * *",
      payload: item(1),
      backfill: "all",
      backfillWindowMs: 3 * MINUTE,
    });
    await before.close();
    clock.advance(60 * MINUTE + 1000);
    await restart(log, { clock, replicator });
    clock.advance(0);
    expect(firedSlots(log).map((t) => (t - T0) / MINUTE)).toEqual([58, 59, 60]);
  });

  it("backfill all after a long outage fires the most recent slots of its window, oldest first", async () => {
    const clock = new FakeClock();
    const { log, replicator } = memoryLog();
    const before = new ResourceLeaseQueue({ clock, replicator, capacity: 1000 });
    const hours = 2 * 60 * MINUTE;
    await before.schedules.set({
      id: "tick",
      cron: "* * * * *",
      payload: item(1),
      backfill: "all",
      backfillWindowMs: hours,
    });
    await before.close();
    clock.advance(5 * hours);
    const after = await restart(log, { clock, replicator, capacity: 1000 });
    clock.advance(0);
    const fired = firedSlots(log).map((t) => (t - T0) / MINUTE);
    expect(fired).toEqual(Array.from({ length: 120 }, (_, i) => 600 - 119 + i));
    expect(after.stats().pendingCount).toBe(120);
  });

  it("fires nothing while draining; after the restore its backfill policy decides", async () => {
    const { queue, events, clock } = fixture();
    await queue.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1), backfill: "latest" });
    await queue.drain();
    clock.advance(3 * MINUTE);
    expect(firedSlots(events)).toEqual([]);
    await queue.restore([]);
    clock.advance(0);
    expect(firedSlots(events)).toEqual([T0 + 3 * MINUTE]);
  });

  it("a slot that finds the queue full is missed, not retried in a loop", async () => {
    const { queue, events, clock } = fixture({ capacity: 1 });
    await queue.enqueue(item("filler"));
    await queue.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1) });
    clock.advance(MINUTE);
    expect(firedSlots(events)).toEqual([]);
    const [filler] = await queue.lease();
    await queue.complete(filler!.ownershipToken);
    clock.advance(MINUTE);
    expect(firedSlots(events)).toEqual([T0 + 2 * MINUTE]);
  });

  it("upsert replaces, remove stops, and both survive a rebuild", async () => {
    const { queue, events, clock } = fixture();
    await queue.schedules.set({ id: "a", cron: "* * * * *", payload: item(1) });
    await queue.schedules.set({ id: "b", cron: "*/2 * * * *", payload: item(2), timezone: "America/New_York" });
    clock.advance(MINUTE);
    await queue.schedules.set({ id: "a", cron: "*/5 * * * *", payload: item(3), backfill: "all" });
    await queue.schedules.remove("b");
    clock.advance(9 * MINUTE);
    expect(firedSlots(events, "a").map((t) => (t - T0) / MINUTE)).toEqual([1, 5, 10]);
    expect(firedSlots(events, "b")).toEqual([]);
    const replica = await ResourceLeaseQueue.rebuild(structuredClone(events), { clock }, { activeLeases: "keep" });
    expect(replica.snapshot()).toEqual(queue.snapshot());
    expect(replica.schedules.list()).toEqual(queue.schedules.list());
    expect(queue.schedules.list()).toMatchObject([{ id: "a", cron: "*/5 * * * *", backfill: "all" }]);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(
      [],
      { clock },
      { snapshot: structuredClone(queue.snapshot()) },
    );
    expect(fromSnapshot.schedules.list()).toEqual(queue.schedules.list());
    await replica.close();
    await fromSnapshot.close();
  });
});
