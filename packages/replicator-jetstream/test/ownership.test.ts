import { connect } from "@nats-io/transport-node";
import { ErrorCodes, type ResourceLeaseItemPayload } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import {
  JetStreamShardOwnership,
  type JetStreamShardOwnershipOptions,
  openOwnedJetStreamResourceLeaseQueue,
} from "../src/index.js";
import { collect, NATS_URL, rejectionOf, testStream, until } from "./helpers.js";

const js = testStream();
const opened: JetStreamShardOwnership[] = [];
afterAll(async () => {
  for (const o of opened) await o.close().catch(() => undefined);
  await js.remove();
});

const TTL = 800;

async function node(
  name: string,
  extra: Partial<JetStreamShardOwnershipOptions> = {},
): Promise<JetStreamShardOwnership> {
  const o = await JetStreamShardOwnership.open({
    ...(extra.connection ? {} : { servers: NATS_URL }),
    bucket: js.ownersBucket,
    nodeId: name,
    url: `http://${name}.test:8080`,
    ownershipTtlMs: TTL,
    ...extra,
  });
  opened.push(o);
  return o;
}

const item = (n: number): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n}`,
  payloadEncoding: "json",
});

const queueOf = (ownership: JetStreamShardOwnership, shard: string, acquireWaitMs = 10_000) =>
  openOwnedJetStreamResourceLeaseQueue({
    ownership,
    log: js.options(shard),
    snapshotBucket: js.snapshotBucket,
    snapshotEveryEvents: 8,
    acquireWaitMs,
  });

describe("fenced shard ownership", () => {
  it("only one node acquires a shard; the other is told who owns it", async () => {
    const a = await node("a1");
    const b = await node("b1");
    const lease = await a.acquire("only-one");
    expect(lease.epoch).toBe(1);
    const error = await rejectionOf(b.acquire("only-one", { waitMs: 300 }));
    expect(error.status).toBe("failed-precondition");
    expect(error.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(error.metadata).toMatchObject({ owner: "a1", ownerUrl: "http://a1.test:8080", shard: "only-one" });
    // a keeps renewing: after more than a TTL, b still cannot take it.
    await new Promise((resolve) => setTimeout(resolve, TTL + 200));
    expect(lease.lost).toBeUndefined();
    expect(lease.stats().renewals).toBeGreaterThan(0);
    expect((await b.owner("only-one"))?.owner).toBe("a1");
    // Released, the shard goes at once, with the next epoch.
    await lease.release();
    const taken = await b.acquire("only-one", { waitMs: 0 });
    expect(taken.epoch).toBe(2);
    expect(await b.owner("only-one")).toMatchObject({ owner: "b1", epoch: 2, released: false });
  });

  it("a takeover after the owner stops renewing: the log records it, the old owner is refused and answers not_owner", async () => {
    const shard = "takeover";
    const zombieClock = new FakeClock(); // a's timers never run: it neither renews nor notices (a paused process)
    const a = await node("a2", { clock: zombieClock });
    const b = await node("b2");
    const first = await queueOf(a, shard);
    const acknowledged: number[] = [];
    for (let n = 1; n <= 20; n++) acknowledged.push(...(await first.queue.enqueue(item(n))).sequenceIds);
    const completed: number[] = [];
    for (let n = 0; n < 12; n++) {
      const [g] = await first.queue.lease({ peerId: "w" });
      await first.queue.complete(g!.ownershipToken);
      completed.push(g!.sequenceId);
    }
    const grants = await first.queue.lease({ maxItems: 3, peerId: "w" });
    await first.queue.complete(grants[0]!.ownershipToken);
    completed.push(grants[0]!.sequenceId);
    const tokensBefore = grants.map((g) => g.ownershipToken.fencingToken);
    const eventsBefore = first.queue.stats().lastEventSequence;

    const started = Date.now();
    await using second = await queueOf(b, shard);
    expect(Date.now() - started).toBeGreaterThanOrEqual(TTL - 50); // waited out a's TTL
    expect(second.lease.epoch).toBe(first.lease.epoch + 1);
    expect(second.snapshotSequence).toBeGreaterThan(0); // replay bounded by a's snapshots
    expect(second.replayedEvents).toBe(eventsBefore - second.snapshotSequence);
    // Every acknowledged enqueue is there; a's leases are still held, with the same tokens.
    const state = second.queue.snapshot();
    const held = [...state.pending, ...state.active.map((l) => l.item)].map((i) => i.sequenceId);
    expect(new Set([...held, ...completed])).toEqual(new Set(acknowledged));
    expect(held.length + completed.length).toBe(acknowledged.length);
    expect(state.active.map((l) => l.token.fencingToken)).toEqual(tokensBefore.slice(1));
    expect(await js.markersOn(shard)).toEqual([
      expect.objectContaining({ owner: "a2", epoch: 1 }),
      expect.objectContaining({ owner: "b2", epoch: 2 }),
    ]);

    // The old owner still thinks it owns the shard: its append is refused by the stream, and it answers not_owner.
    const stored = await js.messagesOn(shard);
    const refused = await rejectionOf(first.queue.enqueue(item(99)));
    expect(refused.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(refused.metadata).toMatchObject({ owner: "b2", ownerUrl: "http://b2.test:8080", epoch: "2" });
    expect(first.lease.lost?.code).toBe(ErrorCodes.resourceLease.notOwner);
    const later = await rejectionOf(first.queue.lease());
    expect(later.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(later.metadata.owner).toBe("b2");
    expect(await js.messagesOn(shard)).toBe(stored);

    // The new owner serves: a's worker completes with its token; new tokens are above every earlier one.
    await second.queue.complete(grants[1]!.ownershipToken);
    await second.queue.enqueue(item(100));
    const next = await second.queue.lease({ maxItems: 5 });
    expect(next.length).toBeGreaterThan(0);
    for (const g of next) expect(g.ownershipToken.fencingToken).toBeGreaterThan(Math.max(...tokensBefore));
    const ids = (await collect(second.log.read(1))).filter((e) => e.eventType === "Enqueue");
    expect(ids.map((e) => e.item?.payload.resourceId)).not.toContain("r99");
    await first.close().catch(() => undefined);
  });

  it("an owner whose renewal is refused stops serving at once, without appending", async () => {
    const shard = "renew-refused";
    const clock = new FakeClock();
    const a = await node("a3", { clock });
    const b = await node("b3");
    const first = await queueOf(a, shard);
    await first.queue.enqueue(item(1));
    await using second = await queueOf(b, shard);
    const stored = await js.messagesOn(shard);
    clock.advance(Math.ceil(TTL / 3)); // a's renewal runs now, against b's revision: refused
    await until(() => first.lease.lost !== undefined);
    await until(() => first.queue.fault?.metadata.owner === "b3");
    const error = await rejectionOf(first.queue.enqueue(item(2)));
    expect(error.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(error.metadata.ownerUrl).toBe("http://b3.test:8080");
    expect(await js.messagesOn(shard)).toBe(stored);
    expect(second.queue.stats().pendingCount).toBe(1);
    await first.close();
  });

  it("an owner that cannot renew within the TTL stops serving", async () => {
    const shard = "renew-timeout";
    const clock = new FakeClock();
    const nc = await connect({ servers: NATS_URL });
    const a = await node("a4", { clock, connection: nc, timeoutMs: 100 });
    const first = await queueOf(a, shard);
    await first.queue.enqueue(item(1));
    await nc.close(); // renewals fail from now on
    clock.advance(Math.ceil(TTL / 3));
    await until(() => first.lease.stats().failedRenewals > 0);
    expect(first.lease.lost).toBeUndefined();
    clock.advance(TTL);
    await until(() => first.lease.lost !== undefined);
    const error = await rejectionOf(first.queue.lease());
    expect(error.code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(error.metadata.owner).toBe(""); // nobody took it yet
    await first.close();
  });
});
