import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../src/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

let server: Awaited<ReturnType<typeof startServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("lock-delay over HTTP", () => {
  it("an expired holder's late complete is 200 within the lock-delay, the item is not granted again; after it, 412 fenced", async () => {
    const clock = new FakeClock();
    const queueOptions = { leaseDurationMs: 1000, lockDelayMs: 5000 };
    server = await startServer({ dispatcher: { clock }, components: [{ queueOptions }] });
    await server.post("resourcelease::enqueue", { payload: payload("a") });
    await server.post("resourcelease::enqueue", { payload: payload("b") });
    const first = await server.post("resourcelease::lease", { maxItems: 2, peerId: "w1" });
    const [a, b] = first.json.items as Array<{ ownershipToken: unknown }>;
    clock.advance(1000); // both expire uncleanly
    expect((await server.post("resourcelease::lease", { maxItems: 2, peerId: "w2" })).json.items).toEqual([]);
    const late = await server.post("resourcelease::complete", { ownershipToken: a!.ownershipToken });
    expect(late.status).toBe(200);
    clock.advance(5000); // b's lock-delay ends: granted again with a higher token, a stays done
    const again = await server.post("resourcelease::lease", { maxItems: 2, peerId: "w2" });
    expect(again.json.items.map((g: { payload: { resourceId: string } }) => g.payload.resourceId)).toEqual(["b"]);
    const stale = await server.post("resourcelease::complete", { ownershipToken: b!.ownershipToken });
    expect([stale.status, stale.json.code]).toEqual([412, ErrorCodes.resourceLease.leaseFenced]);
  });
});
