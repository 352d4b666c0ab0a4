import { describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { aborted, deferred, item, nextEvent } from "./test-helpers.js";
import { httpHarness, isType, rejection } from "./test-http-harness.js";

describe("ResourceLeaseWorker over HTTP: a cancelled item", () => {
  const { setup, worker } = httpHarness();

  it("aborts the handler's signal with resourcelease.lease.cancelled at the next heartbeat; complete is refused", async () => {
    const stack = await setup({ leaseDurationMs: 300 });
    const producer = stack.client();
    const { sequenceId } = await producer.enqueue(item("to-cancel"));
    const started = deferred<ResourceLeaseGrant>();
    const reason = deferred<unknown>();
    const w = worker({
      client: stack.client(),
      peerId: "worker-c",
      leaseWaitMs: 200,
      handler: async (grant, { signal }) => {
        started.resolve(grant);
        reason.resolve(await aborted(signal));
      },
    });
    const lost = nextEvent(w.events(), isType("fenced"));
    w.start();
    const grant = await started.promise;
    expect(await producer.cancel({ sequenceId })).toEqual({ sequenceId, state: "active" });
    const why = await reason.promise;
    expect(why).toBeInstanceOf(OmniRelayError);
    expect((why as OmniRelayError).code).toBe(ErrorCodes.resourceLease.leaseCancelled);
    expect((await lost).error.code).toBe(ErrorCodes.resourceLease.leaseCancelled);
    // The holder's own late complete is refused with the same code, over the wire.
    const refused = await rejection(stack.client().complete(grant.ownershipToken));
    expect([refused.status, refused.code]).toEqual(["failed-precondition", ErrorCodes.resourceLease.leaseCancelled]);
    expect(w.stats()).toMatchObject({ completed: 0, fenced: 1 });
    expect(stack.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0, deadLetterCount: 0 });
  });
});
