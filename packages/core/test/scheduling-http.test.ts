import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, isOmniRelayError } from "../src/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("delayed items and priorities over HTTP", () => {
  it("carry notBefore (ISO-8601), delayMs and priority on the wire; lease honours them", async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    server = await startServer({ components: [{ queueOptions: { clock } }] });
    const s = server;
    const at = "2026-06-01T00:00:10.000Z";
    const enq = await s.post("resourcelease::enqueue", {
      payloads: [
        payload("later", { notBefore: at, priority: 9 }),
        payload("soon", { delayMs: 5_000 }),
        payload("low", { priority: -1 }),
        payload("high", { priority: "7" }), // decimal strings read as numbers, as for every integer
      ],
    });
    expect(enq.status).toBe(200);
    const stats = await s.post("resourcelease::stats", {});
    expect(stats.json).toMatchObject({ pendingCount: 4, delayedCount: 2 });
    const now = await s.post("resourcelease::lease", { maxItems: 10 });
    expect(now.json.items.map((g: { payload: { resourceId: string } }) => g.payload.resourceId)).toEqual([
      "high",
      "low",
    ]);
    clock.advance(5_000);
    const soon = await s.post("resourcelease::lease", {});
    expect(soon.json.payload).toMatchObject({ resourceId: "soon", notBefore: "2026-06-01T00:00:05.000Z" });
    expect(soon.json.payload).not.toHaveProperty("delayMs");
    clock.advance(5_000);
    const later = await s.post("resourcelease::lease", {});
    expect(later.json.payload).toMatchObject({ resourceId: "later", notBefore: at, priority: 9 });
  });

  it.each([
    ["a priority beyond int32", { priority: 2 ** 31 }],
    ["a fractional priority", { priority: 0.5 }],
    ["a notBefore past year 9999", { notBefore: "+010000-01-01T00:00:00.000Z" }],
    ["a notBefore that is no time", { notBefore: "soon" }],
    ["both notBefore and delayMs", { notBefore: "2026-06-01T00:00:10.000Z", delayMs: 1 }],
  ])("refuses %s with invalid-argument resourcelease.payload.invalid, and keeps nothing", async (_, extra) => {
    server = await startServer();
    const res = await server.post("resourcelease::enqueue", { payload: payload("x", extra) });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: ErrorCodes.resourceLease.payloadInvalid });
    expect(server.queue.stats().pendingCount).toBe(0);
  });

  it("the client's enqueue options fill what the payload leaves out", async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    server = await startServer({ components: [{ queueOptions: { clock } }] });
    const client = server.client();
    await client.enqueue(payload("d"), { notBefore: new Date(clock.now() + 1_000), priority: 3 });
    await client.enqueueMany([payload("m1"), payload("m2", { priority: 8 })], { priority: 5 });
    expect(server.queue.stats().delayedCount).toBe(1);
    const grants = await client.lease({ maxItems: 10 });
    expect(grants.map((g) => [g.payload.resourceId, g.payload.priority])).toEqual([
      ["m2", 8],
      ["m1", 5],
    ]);
    const err = await client.enqueue(payload("bad"), { priority: 2 ** 40 }).catch((e: unknown) => e);
    expect(isOmniRelayError(err) && err.code).toBe(ErrorCodes.resourceLease.payloadInvalid);
    clock.advance(1_000);
    const [due] = await client.lease();
    expect(due!.payload).toMatchObject({ resourceId: "d", priority: 3, notBefore: clock.now() });
  });
});
