import { ErrorCodes } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamShardOwnership } from "../src/index.js";
import { NATS_URL, rejectionOf, testStream } from "./helpers.js";

const js = testStream();
const opened: JetStreamShardOwnership[] = [];
afterAll(async () => {
  for (const o of opened) await o.close().catch(() => undefined);
  await js.remove();
});

const TTL = 60_000; // nobody waits this out in the test: only the hint can make a takeover possible

async function node(nodeId: string): Promise<JetStreamShardOwnership> {
  const o = await JetStreamShardOwnership.open({
    servers: NATS_URL,
    bucket: js.ownersBucket,
    nodeId,
    url: `http://${nodeId}.test`,
    ownershipTtlMs: TTL,
    renewEveryMs: TTL - 1, // the owner does not renew during the test: its key keeps the revision it was taken at
  });
  opened.push(o);
  return o;
}

describe("acquire with seenSince", () => {
  it("counts the TTL from when the caller first saw the key's revision, and only for that revision", async () => {
    const a = await node("hint-a");
    const b = await node("hint-b");
    const lease = await a.acquire("hinted");
    const record = await b.owner("hinted");
    expect(record?.revision).toBe(lease.revision);
    // Seen at another revision: no credit, so b cannot take the shard now.
    const stale = { revision: lease.revision + 1, at: b.clock.now() - TTL };
    const refused = await rejectionOf(b.acquire("hinted", { waitMs: 0, seenSince: stale }));
    expect(refused.code).toBe(ErrorCodes.resourceLease.notOwner);
    // Seen at this revision less than a TTL ago: still a's.
    const recent = { revision: lease.revision, at: b.clock.now() - TTL / 2 };
    expect((await rejectionOf(b.acquire("hinted", { waitMs: 0, seenSince: recent }))).metadata.owner).toBe("hint-a");
    // Seen at this revision a TTL ago (a has not renewed since): b takes it at once, next epoch.
    const taken = await b.acquire("hinted", {
      waitMs: 0,
      seenSince: { revision: lease.revision, at: b.clock.now() - TTL },
    });
    expect(taken.epoch).toBe(lease.epoch + 1);
    expect((await b.owner("hinted"))?.owner).toBe("hint-b");
  });
});
