import type { OmniRelayError } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, callJson, clientStack, rejectionOf } from "./harness.js";

const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("cancel and schedules over gRPC, against a real queue", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  async function grpcStack(clock?: FakeClock) {
    const stack = await clientStack(cleanup, clock ? { clock } : {});
    return { outbound: stack.outbound, queue: stack.queue, client: stack.client() };
  }

  it("cancels a leased item: the holder's heartbeat and complete are FAILED_PRECONDITION lease.cancelled", async () => {
    const { outbound, client } = await grpcStack();
    await client.enqueue(payload("a"));
    await client.enqueue({ ...payload("b"), requestId: "order-9" });
    const [grant] = await client.lease({ maxItems: 1 });
    const cancelled = await callJson(outbound, "resourcelease::cancel", { body: { sequenceId: grant!.sequenceId } });
    expect(cancelled.json).toEqual({ sequenceId: 1, state: "active" });
    for (const call of [client.heartbeat(grant!.ownershipToken), client.complete(grant!.ownershipToken)]) {
      expect(await rejectionOf(call)).toMatchObject({
        status: "failed-precondition",
        code: "resourcelease.lease.cancelled",
      });
    }
    expect(await client.cancel({ requestId: "order-9" })).toEqual({ sequenceId: 2, state: "pending" });
    const missing = (await rejectionOf(client.cancel({ sequenceId: 2 }))) as OmniRelayError;
    expect([missing.status, missing.code]).toEqual(["not-found", "resourcelease.item.not_found"]);
    const both = (await rejectionOf(client.cancel({ sequenceId: 2, requestId: "x" }))) as OmniRelayError;
    expect(both.code).toBe("resourcelease.argument.invalid");
  });

  it("schedule.list pages by after / limit / next, and the client reads every page", async () => {
    const { outbound, client } = await grpcStack();
    for (const id of ["c", "a", "b"]) await client.setSchedule({ id, cron: "0 * * * *", payload: payload(id) });
    const page = async (body: object) => {
      const { json } = await callJson(outbound, "resourcelease::schedule.list", { body });
      return [(json.schedules as Array<{ id: string }>).map((s) => s.id), json.next];
    };
    expect(await page({ limit: 2 })).toEqual([["a", "b"], "b"]);
    expect(await page({ after: "b", limit: 2 })).toEqual([["c"], undefined]);
    expect((await client.listSchedules()).map((s) => s.id)).toEqual(["a", "b", "c"]);
  });

  it("schedule.set / list / remove carry every field, and a slot fires", async () => {
    const clock = new FakeClock();
    const { client, queue } = await grpcStack(clock);
    const info = await client.setSchedule({
      id: "report",
      cron: "0 */2 * * *",
      timezone: "Asia/Kolkata",
      payload: { ...payload("r"), body: new Uint8Array([0, 255]), attributes: { k: "v" } },
      backfill: "all",
      backfillWindowMs: 3_600_000,
    });
    expect(info).toMatchObject({
      id: "report",
      timezone: "Asia/Kolkata",
      backfill: "all",
      backfillWindowMs: 3_600_000,
    });
    expect(info.upsertedAt).toBe(clock.now());
    // Kolkata is UTC+5:30: even local hours fall at half past odd UTC hours.
    expect(new Date(info.nextSlotAt!).toISOString()).toBe("2026-01-01T00:30:00.000Z");
    clock.set(info.nextSlotAt!);
    expect(queue.stats().pendingCount).toBe(1);
    const [listed] = await client.listSchedules();
    expect(listed).toMatchObject({ id: "report", lastSlotAt: info.nextSlotAt, payload: { attributes: { k: "v" } } });
    expect([...listed!.payload.body!]).toEqual([0, 255]);
    await client.removeSchedule("report");
    expect(await client.listSchedules()).toEqual([]);
    expect(await rejectionOf(client.removeSchedule("report"))).toMatchObject({
      status: "not-found",
      code: "resourcelease.schedule.not_found",
    });
    expect(
      await rejectionOf(client.setSchedule({ id: "x", cron: "*/2 * * * * *", payload: payload("r") })),
    ).toMatchObject({ status: "invalid-argument", code: "resourcelease.schedule.too_frequent" });
  });
});
