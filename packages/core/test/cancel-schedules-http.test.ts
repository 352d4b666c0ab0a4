import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../src/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

let server: Awaited<ReturnType<typeof startServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("cancel and schedules over HTTP", () => {
  it("cancel by sequenceId and by requestId, with coded errors for bad targets", async () => {
    server = await startServer();
    const a = await server.post("resourcelease::enqueue", { payload: payload("a") });
    await server.post("resourcelease::enqueue", { payload: payload("b", { requestId: "order-7" }) });
    const byId = await server.post("resourcelease::cancel", { sequenceId: a.json.sequenceId });
    expect([byId.status, byId.json]).toEqual([200, { sequenceId: a.json.sequenceId, state: "pending" }]);
    const client = server.client();
    expect(await client.cancel({ requestId: "order-7" })).toEqual({ sequenceId: 2, state: "pending" });
    expect((await client.stats()).pendingCount).toBe(0);

    const gone = await server.post("resourcelease::cancel", { sequenceId: 1 });
    expect([gone.status, gone.headers.get("rpc-error-code")]).toEqual([404, ErrorCodes.resourceLease.itemNotFound]);
    for (const body of [{}, { sequenceId: 1, requestId: "x" }, { sequenceId: "one" }, { sequenceId: 0 }]) {
      const bad = await server.post("resourcelease::cancel", body);
      expect([bad.status, bad.json.code], JSON.stringify(body)).toEqual([
        400,
        ErrorCodes.resourceLease.argumentInvalid,
      ]);
    }
  });

  it("a leased item cancelled over HTTP: the holder's heartbeat and complete answer 412 lease.cancelled", async () => {
    server = await startServer();
    await server.post("resourcelease::enqueue", { payload: payload("a") });
    const lease = await server.post("resourcelease::lease", {});
    expect((await server.post("resourcelease::cancel", { sequenceId: lease.json.sequenceId })).json.state).toBe(
      "active",
    );
    for (const verb of ["heartbeat", "complete"]) {
      const r = await server.post(`resourcelease::${verb}`, { ownershipToken: lease.json.ownershipToken });
      expect([r.status, r.json.code]).toEqual([412, ErrorCodes.resourceLease.leaseCancelled]);
    }
  });

  it("schedule.set / list / remove, and a slot fires an item with its request id", async () => {
    const clock = new FakeClock();
    server = await startServer({ dispatcher: { clock } });
    const set = await server.post("resourcelease::schedule.set", {
      schedule: {
        id: "nightly",
        cron: "*/5 * * * *",
        timezone: "Europe/Berlin",
        payload: payload("r"),
        backfill: "latest",
      },
    });
    expect(set.status).toBe(200);
    expect(set.json.schedule).toMatchObject({
      id: "nightly",
      backfill: "latest",
      backfillWindowMs: 86_400_000,
      upsertedAt: new Date(clock.now()).toISOString(),
      nextSlotAt: new Date(clock.now() + 300_000).toISOString(),
    });
    const client = server.client();
    clock.advance(300_000);
    const [grant] = await client.lease({ maxItems: 1 });
    expect(grant?.payload.requestId).toBe(`schedule:nightly:${new Date(clock.now()).toISOString()}`);
    const listed = await client.listSchedules();
    expect(listed).toMatchObject([{ id: "nightly", lastSlotAt: clock.now(), nextSlotAt: clock.now() + 300_000 }]);
    await client.removeSchedule("nightly");
    expect(await client.listSchedules()).toEqual([]);
    const again = await server.post("resourcelease::schedule.remove", { id: "nightly" });
    expect([again.status, again.json.code]).toEqual([404, ErrorCodes.resourceLease.scheduleNotFound]);
  });

  it("schedule.list answers in pages (limit, 2 MiB of payload) that chain by next; the client reads them all", async () => {
    server = await startServer();
    const body = Buffer.alloc(900_000, 7).toString("base64");
    const ids = ["a", "b", "c", "d", "e", "f", "g"];
    for (const [i, id] of ids.entries()) {
      const big = i < 5 ? { body } : {}; // five of 900 kB: a 2 MiB page holds two of them
      const set = await server.post("resourcelease::schedule.set", {
        schedule: { id, cron: "0 * * * *", payload: payload(id, big) },
      });
      expect(set.status).toBe(200);
    }
    const pages: string[][] = [];
    let after: string | undefined;
    do {
      const r = await server.post("resourcelease::schedule.list", after ? { after } : {});
      expect(r.status).toBe(200);
      pages.push(r.json.schedules.map((s: { id: string }) => s.id));
      after = r.json.next;
    } while (after !== undefined);
    expect(pages).toEqual([
      ["a", "b"],
      ["c", "d"],
      ["e", "f", "g"],
    ]);
    const limited = await server.post("resourcelease::schedule.list", { after: "e", limit: 1 });
    expect([limited.json.schedules.map((s: { id: string }) => s.id), limited.json.next]).toEqual([["f"], "f"]);
    expect((await server.client().listSchedules()).map((s) => s.id)).toEqual(ids);
    for (const bad of [{ limit: 0 }, { limit: 10_001 }, { after: 5 }]) {
      const r = await server.post("resourcelease::schedule.list", bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
  });

  it("refuses bad schedules with 400 and a code naming the problem", async () => {
    server = await startServer();
    const base = { id: "s", cron: "* * * * *", payload: payload("r") };
    const cases: Array<[unknown, string]> = [
      [{}, ErrorCodes.resourceLease.scheduleInvalid],
      [{ schedule: { ...base, cron: "61 * * * *" } }, ErrorCodes.resourceLease.scheduleCronInvalid],
      [{ schedule: { ...base, timezone: "Europe/Atlantis" } }, ErrorCodes.resourceLease.scheduleTimezoneInvalid],
      [{ schedule: { ...base, cron: "* * * * * *" } }, ErrorCodes.resourceLease.scheduleTooFrequent],
      [{ schedule: { ...base, cron: "0 0 31 2 *" } }, ErrorCodes.resourceLease.scheduleNeverFires],
      [{ schedule: { ...base, id: "../etc" } }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ schedule: { ...base, backfill: 3 } }, ErrorCodes.resourceLease.scheduleInvalid],
      [{ schedule: { ...base, payload: { resourceType: "t" } } }, ErrorCodes.resourceLease.payloadResourceIdRequired],
    ];
    for (const [body, code] of cases) {
      const r = await server.post("resourcelease::schedule.set", body);
      expect([r.status, r.json.code], JSON.stringify(body)).toEqual([400, code]);
    }
    expect((await server.client().listSchedules()).length).toBe(0);
  });
});
