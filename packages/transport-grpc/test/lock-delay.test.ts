import type { OmniRelayError } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, clientStack, rejectionOf } from "./harness.js";

const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("lock-delay over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("accepts an expired holder's late complete within the lock-delay; after a new grant the old token is fenced", async () => {
    const clock = new FakeClock();
    const queueOptions = { leaseDurationMs: 1000, lockDelayMs: 5000 };
    const client = (await clientStack(cleanup, { clock, component: { queueOptions } })).client();
    await client.enqueueMany([payload("a"), payload("b")]);
    const [a, b] = await client.lease({ maxItems: 2, peerId: "w1" });
    clock.advance(1000);
    expect(await client.lease({ maxItems: 2, peerId: "w2" })).toEqual([]);
    await client.complete(a!.ownershipToken); // accepted late
    clock.advance(5000);
    const again = await client.lease({ maxItems: 2, peerId: "w2" });
    expect(again.map((g) => g.payload.resourceId)).toEqual(["b"]);
    expect(again[0]!.ownershipToken.fencingToken).toBeGreaterThan(b!.ownershipToken.fencingToken);
    const stale = (await rejectionOf(client.complete(b!.ownershipToken))) as OmniRelayError;
    expect([stale.status, stale.code]).toEqual(["failed-precondition", "resourcelease.lease.fenced"]);
  });
});
