import type { ChildProcess } from "node:child_process";
import type { ResourceLeaseItemPayload } from "@omnirelay/core";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamShardOwnership, openOwnedJetStreamResourceLeaseQueue } from "../src/index.js";
import { NATS_URL, testStream, until } from "./helpers.js";
import { expectNothingLost, startOwner } from "./owner-child.js";

const js = testStream();
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await js.remove();
});

const TTL = 1000;

describe("failover after the owner process is SIGKILLed", () => {
  it("another node takes the shard after the TTL, loses no acknowledged enqueue, and issues higher tokens", async () => {
    const shard = "sigkill";
    const { child, printed, stderr } = startOwner({ ...js, servers: [NATS_URL], shard, ttlMs: TTL });
    children.push(child);
    await until(() => printed.acked.size >= 300 || child.exitCode !== null, 20_000).catch(() => undefined);
    expect(stderr()).toBe("");
    expect(printed.acked.size).toBeGreaterThanOrEqual(300);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    expect(child.signalCode).toBe("SIGKILL");
    const killedAt = Date.now();

    await using b = await JetStreamShardOwnership.open({
      servers: NATS_URL,
      bucket: js.ownersBucket,
      nodeId: "b",
      url: "http://b.test:8080",
      ownershipTtlMs: TTL,
    });
    await using owned = await openOwnedJetStreamResourceLeaseQueue({
      ownership: b,
      log: js.options(shard),
      snapshotBucket: js.snapshotBucket,
      acquireWaitMs: 10 * TTL,
    });
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeGreaterThanOrEqual(TTL - 50); // the child's ownership had to run out first
    expect(owned.lease.epoch).toBe(2);
    expect(owned.snapshotSequence).toBeGreaterThan(0);
    expect(owned.replayedEvents).toBe(owned.queue.stats().lastEventSequence - owned.snapshotSequence);

    const before = expectNothingLost(printed, owned);
    // The new owner serves, and its tokens are above every token the killed owner issued.
    await owned.queue.enqueue(item("after"));
    const grants = await owned.queue.lease({ maxItems: 10 });
    expect(grants.length).toBe(10);
    for (const g of grants) expect(g.ownershipToken.fencingToken).toBeGreaterThan(before);
    expect(await js.markersOn(shard)).toEqual([
      expect.objectContaining({ owner: "child", epoch: 1 }),
      expect.objectContaining({ owner: "b", epoch: 2 }),
    ]);
    console.info(
      `takeover ${takeoverMs} ms after SIGKILL (TTL ${TTL} ms); replayed ${owned.replayedEvents} events after the snapshot at ${owned.snapshotSequence}; ${printed.acked.size} acknowledged enqueues checked`,
    );
  });
});

function item(id: string): ResourceLeaseItemPayload {
  return { resourceType: "table", resourceId: id, partitionKey: id, payloadEncoding: "json" };
}
