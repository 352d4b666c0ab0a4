import type { OmniRelayError } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, callJson, clientStack, rejectionOf } from "./harness.js";

const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("resourcelease::history over gRPC, against a real queue", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  async function grpcStack(clock: FakeClock) {
    const queueOptions = { leaseDurationMs: 1000, lockDelayMs: 500 };
    return clientStack(cleanup, { clock, component: { queueOptions } });
  }

  it("tells the story through protobuf: lock-delay, the stale worker's refused heartbeat, every field", async () => {
    const clock = new FakeClock();
    const { outbound, client } = await grpcStack(clock);
    await client("producer").enqueue({ ...payload("a"), requestId: "order-1" });
    const w1 = client("w1");
    const [first] = await w1.lease({ peerId: "w1", maxItems: 1 });
    await w1.heartbeat(first!.ownershipToken);
    clock.advance(100);
    await w1.heartbeat(first!.ownershipToken);
    clock.advance(1000); // expires uncleanly: lock-delay 500 ms
    clock.advance(500);
    const [second] = await client("w2").lease({ peerId: "w2", maxItems: 1 });
    expect(second?.sequenceId).toBe(first!.sequenceId);
    expect(await rejectionOf(w1.heartbeat(first!.ownershipToken))).toMatchObject({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
    });
    await client("w2").fail(second!.ownershipToken, { reason: "boom", errorCode: "app.boom", requeue: false });

    const story = await client("ops").history({ requestId: "order-1" });
    expect(story).toMatchObject({ sequenceId: first!.sequenceId, requestId: "order-1", droppedEntries: 0 });
    expect(story.entries.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "LeaseExpired",
      "Requeued",
      "LeaseGranted",
      "LeaseRefused",
      "Failed",
      "DeadLettered",
    ]);
    const [enq, grant, beats, expiry, , , refusal, failed] = story.entries;
    expect(enq).toMatchObject({ peerId: "producer", attempt: 1 });
    expect(grant).toMatchObject({ peerId: "w1", fencingToken: first!.ownershipToken.fencingToken });
    expect(grant!.leaseExpiresAt).toBe(first!.leaseExpiresAt);
    expect(beats).toMatchObject({ heartbeatCount: 2, lastHeartbeatAt: beats!.at + 100 });
    expect(expiry!.metadata).toEqual({ "lease.lock_delay_ms": "500" });
    expect(refusal).toMatchObject({
      peerId: "w1",
      fencingToken: first!.ownershipToken.fencingToken,
      at: clock.now(),
      metadata: { "refused.verb": "heartbeat", "refused.code": "resourcelease.lease.fenced" },
    });
    expect(failed!.error).toEqual({ message: "boom", code: "app.boom" });
    // The raw call by sequence id answers the same JSON-shaped story.
    const raw = await callJson(outbound, "resourcelease::history", { body: { sequenceId: first!.sequenceId } });
    expect(raw.json.entries).toHaveLength(9);
  });

  it("NOT_FOUND item.not_found for an unknown item, INVALID_ARGUMENT for a target named twice or not at all", async () => {
    const { client } = await grpcStack(new FakeClock());
    const missing = (await rejectionOf(client("ops").history({ sequenceId: 7 }))) as OmniRelayError;
    expect([missing.status, missing.code]).toEqual(["not-found", "resourcelease.item.not_found"]);
    for (const target of [{}, { sequenceId: 1, requestId: "x" }]) {
      const bad = (await rejectionOf(client("ops").history(target))) as OmniRelayError;
      expect([bad.status, bad.code]).toEqual(["invalid-argument", "resourcelease.argument.invalid"]);
    }
  });
});
