import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseQueue } from "./queue.js";
import { fixture, item, rejection } from "./test-helpers.js";

const notOwner = () =>
  new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.notOwner,
    message: "Node b owns shard s now.",
    metadata: { owner: "b", ownerUrl: "http://b:8080", shard: "s" },
  });

describe("stopServing and a replicator's not_owner", () => {
  it("stopServing answers every later call and a waiting long-poll with its error", async () => {
    const { queue } = fixture();
    await queue.enqueue(item(1));
    const [grant] = await queue.lease();
    const waiting = rejection(queue.lease({ waitMs: 60_000 }));
    queue.stopServing(notOwner());
    for (const error of [
      await waiting,
      await rejection(queue.enqueue(item(2))),
      await rejection(queue.complete(grant!.ownershipToken)),
    ]) {
      expect(error.status).toBe("failed-precondition");
      expect(error.code).toBe("resourcelease.not_owner");
      expect(error.metadata).toMatchObject({ owner: "b", ownerUrl: "http://b:8080" });
    }
    expect(queue.fault?.code).toBe(ErrorCodes.resourceLease.notOwner);
    // Called again (the guard learned the new owner), the new error replaces the old.
    queue.stopServing(
      new OmniRelayError({ ...notOwner(), message: "c owns it", metadata: { owner: "c", ownerUrl: "http://c" } }),
    );
    expect((await rejection(queue.enqueue(item(3)))).metadata.owner).toBe("c");
    expect(queue.stats().state).toBe("faulted");
    expect(() => queue.stopServing(new Error("x") as OmniRelayError)).toThrow(TypeError);
    await queue.close();
  });

  it("a replicator that rejects with not_owner stops the queue with that error, not replication.failed", async () => {
    let refuse = false;
    const queue = new ResourceLeaseQueue({
      replicator: {
        async publish() {
          if (refuse) throw notOwner();
        },
      },
    });
    await queue.enqueue(item(1));
    refuse = true;
    const first = await rejection(queue.enqueue(item(2)));
    expect(first.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(first.metadata.owner).toBe("b");
    const later = await rejection(queue.lease());
    expect(later.code).toBe(ErrorCodes.resourceLease.notOwner);
    // Any other rejection still faults with replication.failed.
    const other = new ResourceLeaseQueue({
      replicator: {
        async publish() {
          throw new Error("disk full");
        },
      },
    });
    expect((await rejection(other.enqueue(item(1)))).code).toBe(ErrorCodes.replication.failed);
  });
});
