import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../src/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

let server: Awaited<ReturnType<typeof startServer>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("resourcelease::history over HTTP", () => {
  it("tells an item's story, with the stale caller's refused complete, by sequenceId and by requestId", async () => {
    const clock = new FakeClock();
    server = await startServer({ dispatcher: { clock }, components: [{ queueOptions: { leaseDurationMs: 1000 } }] });
    await server.post(
      "resourcelease::enqueue",
      { payload: payload("a", { requestId: "order-7" }) },
      {
        "rpc-caller": "producer",
      },
    );
    const first = await server.post("resourcelease::lease", { peerId: "w1" });
    await server.post(
      "resourcelease::heartbeat",
      { ownershipToken: first.json.ownershipToken },
      { "rpc-caller": "w1" },
    );
    clock.advance(1000); // w1's lease expires uncleanly
    const second = await server.post("resourcelease::lease", { peerId: "w2" });
    const stale = await server.post(
      "resourcelease::complete",
      { ownershipToken: first.json.ownershipToken },
      { "rpc-caller": "w1" },
    );
    expect([stale.status, stale.json.code]).toEqual([412, ErrorCodes.resourceLease.leaseFenced]);
    await server.post(
      "resourcelease::complete",
      { ownershipToken: second.json.ownershipToken },
      { "rpc-caller": "w2" },
    );

    const r = await server.post("resourcelease::history", { sequenceId: first.json.sequenceId });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ sequenceId: first.json.sequenceId, requestId: "order-7", droppedEntries: 0 });
    expect(r.json.entries.map((e: { eventType: string }) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "LeaseExpired",
      "Requeued",
      "LeaseGranted",
      "LeaseRefused",
      "Completed",
    ]);
    const refusal = r.json.entries[6];
    expect(refusal).toMatchObject({
      peerId: "w1",
      attempt: 1,
      fencingToken: first.json.ownershipToken.fencingToken,
      at: new Date(clock.now()).toISOString(),
      metadata: { "refused.verb": "complete", "refused.code": ErrorCodes.resourceLease.leaseFenced },
    });
    expect(r.json.entries[0]).toMatchObject({ peerId: "producer" });
    expect(r.json.entries[2]).toMatchObject({ heartbeatCount: 1, peerId: "w1" });
    expect(r.json.entries[5]).toMatchObject({ peerId: "w2", attempt: 2 });
    // The client reads the same story (times as ms) by request id.
    const story = await server.client().history({ requestId: "order-7" });
    expect(story.entries).toHaveLength(8);
    expect(story.entries[6]).toMatchObject({ eventType: "LeaseRefused", peerId: "w1", at: clock.now() });
  });

  it("answers 404 item.not_found for an unknown item and 400 argument_invalid for bad targets", async () => {
    server = await startServer();
    const unknown = await server.post("resourcelease::history", { sequenceId: 42 });
    expect([unknown.status, unknown.headers.get("rpc-error-code")]).toEqual([
      404,
      ErrorCodes.resourceLease.itemNotFound,
    ]);
    const byRequest = await server.post("resourcelease::history", { requestId: "never" });
    expect([byRequest.status, byRequest.json.metadata]).toEqual([404, { requestId: "never" }]);
    for (const body of [{}, { sequenceId: 1, requestId: "x" }, { sequenceId: "one" }, { sequenceId: 0 }, "{"]) {
      const bad = await server.post("resourcelease::history", body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.json.code, JSON.stringify(body)).toMatch(/^(resourcelease|omnirelay)\./);
    }
  });
});
