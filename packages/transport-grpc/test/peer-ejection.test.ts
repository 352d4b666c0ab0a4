import type { OmniRelayError } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { FakeClock } from "@omnirelay/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, clientStack, rejectionOf } from "./harness.js";

const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("outlier ejection over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("refuses an ejected peer's lease with UNAVAILABLE resourcelease.peer.ejected, lets it finish held work, and takes it back after the ejection", async () => {
    const clock = new FakeClock();
    const healthTracker = new PeerLeaseHealthTracker({ clock, ejection: { baseEjectionMs: 30_000 } });
    const queueOptions = { leaseDurationMs: 1000 };
    const client = (await clientStack(cleanup, { clock, component: { queueOptions, healthTracker } })).client();
    await client.enqueueMany(["a", "b", "c", "d", "e", "f", "g"].map(payload));
    const [good] = await client.lease({ peerId: "good" });
    await client.complete(good!.ownershipToken);

    const [kept] = await client.lease({ peerId: "bad" });
    clock.advance(500);
    expect(await client.lease({ peerId: "bad", maxItems: 5 })).toHaveLength(5);
    clock.advance(400);
    await client.heartbeat(kept!.ownershipToken);
    clock.advance(600); // five expiries in a row
    const ejectedAt = clock.now();

    const refused = (await rejectionOf(client.lease({ peerId: "bad" }))) as OmniRelayError;
    expect([refused.status, refused.code]).toEqual(["unavailable", "resourcelease.peer.ejected"]);
    expect(refused.metadata).toMatchObject({
      peerId: "bad",
      retryAfterMs: "30000",
      ejectedUntil: new Date(ejectedAt + 30_000).toISOString(),
    });
    await client.heartbeat(kept!.ownershipToken);
    await client.complete(kept!.ownershipToken);

    clock.advance(30_000);
    expect(await client.lease({ peerId: "bad" })).toHaveLength(1);
  });
});
