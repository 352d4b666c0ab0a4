import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { SCHEDULE_MAX_BYTES } from "./schedules.js";
import { fixture, item, rejection } from "./test-helpers.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1); // FakeClock's start: a whole minute

const fired = (events: readonly ResourceLeaseReplicationEvent[]) =>
  events
    .filter((e) => e.eventType === "Enqueue" && e.metadata["schedule.id"] === "tick")
    .map((e) => e.item?.payload.requestId);

describe("a schedule's slots", () => {
  it("own their request ids: an enqueue cannot take one first and stand in for the slot", async () => {
    const { queue, events, clock } = fixture();
    await queue.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1) });
    const slotId = `schedule:tick:${new Date(T0 + MINUTE).toISOString()}`;
    for (const payloads of [[{ ...item(2), requestId: slotId }], [item(3), { ...item(4), requestId: "schedule:x" }]]) {
      const error = await rejection(queue.enqueueMany(payloads));
      expect(error).toMatchObject({ status: "invalid-argument", code: ErrorCodes.resourceLease.payloadInvalid });
      expect(error.metadata.field).toBe(payloads.length === 1 ? "payload.requestId" : "payloads[1].requestId");
    }
    expect(queue.stats().pendingCount).toBe(0); // all or none
    await queue.enqueue({ ...item(5), requestId: "Schedule:tick" }); // only the exact prefix is reserved
    clock.advance(MINUTE);
    expect(fired(events)).toEqual([slotId]);
    // A drained slot item comes back with its id: a restore may carry one.
    const drained = await queue.drain();
    expect(drained.map((i) => i.payload.requestId)).toContain(slotId);
    expect(await queue.restore(drained)).toBe(drained.length);
  });

  it("under backfill all, one that found the queue full fires once there is room, as a slot missed while stopped", async () => {
    const { queue, events, clock } = fixture({ capacity: 1 });
    await queue.enqueue(item("filler"));
    await queue.schedules.set({ id: "tick", cron: "* * * * *", payload: item(1), backfill: "all" });
    clock.advance(MINUTE);
    expect(fired(events)).toEqual([]);
    const [filler] = await queue.lease();
    await queue.complete(filler!.ownershipToken);
    clock.advance(MINUTE);
    // The missed slot first (oldest first); the on-time one then finds the queue full again.
    expect(fired(events)).toEqual([`schedule:tick:${new Date(T0 + MINUTE).toISOString()}`]);
  });
});

describe("a queue's schedules", () => {
  it("hold at most SCHEDULE_MAX_BYTES of payload in all; a replacement counts instead of the one it replaces", async () => {
    const { queue } = fixture();
    const big = (n: number) => ({ ...item(n), body: new Uint8Array(1_000_000).fill(n) });
    const fit = Math.floor(SCHEDULE_MAX_BYTES / 1_000_100);
    for (let i = 0; i < fit; i++) await queue.schedules.set({ id: `s${i}`, cron: "0 0 1 1 *", payload: big(i) });
    const error = await rejection(queue.schedules.set({ id: "one-more", cron: "0 0 1 1 *", payload: big(99) }));
    expect(error).toMatchObject({
      status: "resource-exhausted",
      code: ErrorCodes.resourceLease.scheduleTooMany,
      metadata: { limit: String(SCHEDULE_MAX_BYTES) },
    });
    await queue.schedules.set({ id: "s0", cron: "0 0 1 1 *", payload: big(7) }); // replaces: same size
    await queue.schedules.set({ id: "small", cron: "0 0 1 1 *", payload: item(1) });
    expect(queue.schedules.list()).toHaveLength(fit + 1);
  });
});
