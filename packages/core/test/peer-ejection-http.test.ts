import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../src/index.js";
import { PeerLeaseHealthTracker } from "../src/peers/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

let server: Awaited<ReturnType<typeof startServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Grant = { ownershipToken: unknown };

describe("outlier ejection over HTTP", () => {
  it("refuses an ejected peer's lease with 503 resourcelease.peer.ejected until the ejection ends; its held lease still works", async () => {
    const clock = new FakeClock();
    const healthTracker = new PeerLeaseHealthTracker({ clock, ejection: { baseEjectionMs: 30_000 } });
    const queueOptions = { leaseDurationMs: 1000 };
    server = await startServer({ dispatcher: { clock }, components: [{ queueOptions, healthTracker }] });
    for (const id of ["a", "b", "c", "d", "e", "f", "g"]) {
      await server.post("resourcelease::enqueue", { payload: payload(id) });
    }
    const good = await server.post("resourcelease::lease", { peerId: "good" });
    const done = await server.post("resourcelease::complete", { ownershipToken: good.json.ownershipToken });
    expect(done.status).toBe(200);

    const kept = (await server.post("resourcelease::lease", { peerId: "bad" })).json as Grant;
    clock.advance(500);
    const five = await server.post("resourcelease::lease", { peerId: "bad", maxItems: 5 });
    expect(five.json.items).toHaveLength(5);
    clock.advance(400);
    expect((await server.post("resourcelease::heartbeat", { ownershipToken: kept.ownershipToken })).status).toBe(200);
    clock.advance(600); // the five expire, in a row; `kept` was renewed
    const ejectedAt = clock.now();

    const refused = await server.post("resourcelease::lease", { peerId: "bad" });
    expect([refused.status, refused.json.code]).toEqual([503, ErrorCodes.resourceLease.peerEjected]);
    expect(refused.json.metadata).toMatchObject({
      peerId: "bad",
      reason: "consecutive-expiries",
      retryAfterMs: "30000",
      ejectedUntil: new Date(ejectedAt + 30_000).toISOString(),
    });
    // Work it already holds is not taken away: heartbeat and complete pass.
    expect((await server.post("resourcelease::heartbeat", { ownershipToken: kept.ownershipToken })).status).toBe(200);
    expect((await server.post("resourcelease::complete", { ownershipToken: kept.ownershipToken })).status).toBe(200);
    // Other peers keep leasing: the expired items go to them.
    expect((await server.post("resourcelease::lease", { peerId: "good", maxItems: 2 })).json.items).toHaveLength(2);

    clock.advance(29_999);
    const still = await server.post("resourcelease::lease", { peerId: "bad" });
    expect([still.status, still.json.metadata.retryAfterMs]).toEqual([503, "1"]);
    clock.advance(1);
    const back = await server.post("resourcelease::lease", { peerId: "bad" });
    expect(back.status).toBe(200);
    expect(back.json.ownershipToken).toBeDefined();
  });
});
