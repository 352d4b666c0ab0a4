import { describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { aborted, deferred, item, nextEvent, spyClient } from "./test-helpers.js";
import { httpHarness, isType, rejection } from "./test-http-harness.js";

describe("ResourceLeaseWorker over HTTP: heartbeats and fencing", () => {
  const { setup, worker } = httpHarness();

  it("keeps a handler that runs 3x the lease length alive with automatic heartbeats", async () => {
    const stack = await setup();
    await stack.client().enqueue(item("long"));
    const client = spyClient(stack.client());
    const attempts: number[] = [];
    let signal: AbortSignal | undefined;
    const w = worker({
      client,
      peerId: "worker-long",
      leaseWaitMs: 200,
      handler: async (grant, context) => {
        attempts.push(grant.attempt);
        signal = context.signal;
        await new Promise((r) => setTimeout(r, 900));
      },
    });
    const done = nextEvent(w.events(), isType("completed"));
    w.start();
    await done;

    expect(attempts).toEqual([1]);
    expect(signal?.aborted).toBe(false);
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(5); // every ~100 ms of a 300 ms lease
    expect(w.stats()).toMatchObject({ completed: 1, fenced: 0, failed: 0, errors: 0 });
    expect(stack.queue.stats().activeLeaseCount).toBe(0);
  });

  it("aborts a handler whose lease cannot be renewed before the deadline; the stale token is fenced", async () => {
    const stack = await setup();
    const producer = stack.client();
    await producer.enqueue(item("stuck"));
    const client = spyClient(stack.client(), {
      heartbeat: async () => {
        throw new OmniRelayError({
          status: "unavailable",
          code: "omnirelay.transport.unavailable",
          message: "network down",
        });
      },
    });
    const release = deferred();
    const started = deferred<ResourceLeaseGrant>();
    const abortedAt = deferred<{ reason: unknown; at: number }>();
    const w = worker(
      {
        client,
        peerId: "worker-stuck",
        leaseWaitMs: 200,
        handler: async (grant, { signal }) => {
          started.resolve(grant);
          const reason = await aborted(signal);
          abortedAt.resolve({ reason, at: Date.now() });
          await release.promise; // blocks on, holding its slot, like a handler stuck in a slow call
        },
      },
      () => release.resolve(),
    );
    w.start();
    const grant = await started.promise;
    const { reason, at } = await abortedAt.promise;

    expect(isOmniRelayError(reason)).toBe(true);
    expect(reason).toMatchObject({ status: "deadline-exceeded", code: ErrorCodes.resourceLease.leaseExpiredLocally });
    expect(at).toBeLessThan(grant.leaseExpiresAt);
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(1);

    // After expiry the queue hands the item to someone else...
    const other = stack.client("worker-other");
    const [regrant] = await other.lease({ peerId: "worker-other", waitMs: 2_000, maxItems: 1 });
    expect(regrant).toMatchObject({
      sequenceId: grant.sequenceId,
      attempt: 2,
      lastError: { code: "resourcelease.lease.expired" },
    });
    // ...and a late completion with the old token is refused.
    const late = await rejection(producer.complete(grant.ownershipToken));
    expect(late).toMatchObject({ status: "failed-precondition", code: "resourcelease.lease.fenced" });

    expect(client.calls.completes).toEqual([]);
    expect(client.calls.fails).toEqual([]);
    expect(w.stats()).toMatchObject({ fenced: 1, completed: 0, failed: 0, inFlight: 1 });
    await other.complete(regrant!.ownershipToken);
  });

  it("fires the signal with resourcelease.lease.fenced when a heartbeat is rejected, and never completes", async () => {
    const stack = await setup();
    const admin = stack.client("admin");
    await admin.enqueue(item("taken"));
    const client = spyClient(stack.client());
    const started = deferred<ResourceLeaseGrant>();
    const w = worker({
      client,
      peerId: "worker-fenced",
      leaseWaitMs: 200,
      handler: async (grant, { signal }) => {
        started.resolve(grant);
        await aborted(signal); // then resolves normally: the worker must still not complete
      },
    });
    const fenced = nextEvent(w.events(), isType("fenced"));
    w.start();
    const grant = await started.promise;
    await admin.fail(grant.ownershipToken, { requeue: false, reason: "taken away" });
    const event = await fenced;

    expect(event.error).toMatchObject({ status: "failed-precondition", code: "resourcelease.lease.fenced" });
    expect(event.sequenceId).toBe(grant.sequenceId);
    await w.close({ graceMs: 1_000 });
    expect(client.calls.heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(client.calls.completes).toEqual([]);
    expect(client.calls.fails).toEqual([]);
    expect(w.stats()).toMatchObject({ fenced: 1, completed: 0, failed: 0, inFlight: 0 });
    expect(stack.queue.stats().deadLetterCount).toBe(1);
  });
});
