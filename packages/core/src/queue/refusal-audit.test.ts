import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "./queue.js";
import { REFUSAL_EVENTS_PER_SECOND } from "./refusal-audit.js";
import { fixture, item, rejection } from "./test-helpers.js";

describe("refused stale calls in the log (LeaseRefused)", () => {
  it("records a stale token once per verb: a worker retrying a fenced complete in a loop writes one event", async () => {
    const f = fixture();
    await f.queue.enqueue(item(1));
    const [grant] = await f.queue.lease({ peerId: "w" });
    await f.queue.complete(grant!.ownershipToken);
    for (let i = 0; i < 100; i++) {
      const err = await rejection(f.queue.complete(grant!.ownershipToken));
      expect(err.code).toBe(ErrorCodes.resourceLease.leaseFenced); // every call is still refused
    }
    await rejection(f.queue.heartbeat(grant!.ownershipToken));
    const refused = f.events.filter((e) => e.eventType === "LeaseRefused");
    expect(refused.map((e) => e.metadata["refused.verb"])).toEqual(["complete", "heartbeat"]);
  });

  it("records at most the audit rate of refusals a second, so invented tokens cannot flood the log", async () => {
    const f = fixture();
    await f.queue.enqueue(item(1));
    const [grant] = await f.queue.lease({ peerId: "w" });
    await f.queue.complete(grant!.ownershipToken);
    // Tokens that look issued (their numbers are within what the queue handed out) but were never granted: fenced.
    const forged = (i: number) => ({ ...grant!.ownershipToken, leaseId: `forged-${i}` });
    for (let i = 0; i < 3 * REFUSAL_EVENTS_PER_SECOND; i++) await rejection(f.queue.complete(forged(i)));
    const count = () => f.events.filter((e) => e.eventType === "LeaseRefused").length;
    expect(count()).toBe(REFUSAL_EVENTS_PER_SECOND);
    f.clock.advance(1000);
    for (let i = 0; i < 3 * REFUSAL_EVENTS_PER_SECOND; i++) await rejection(f.queue.complete(forged(1000 + i)));
    expect(count()).toBe(2 * REFUSAL_EVENTS_PER_SECOND);
    // The events that were written rebuild the same state (they change none).
    const rebuilt = await ResourceLeaseQueue.rebuild(f.events, { clock: f.clock });
    expect(rebuilt.snapshot()).toEqual(f.queue.snapshot());
    await rebuilt.close();
  });
});
