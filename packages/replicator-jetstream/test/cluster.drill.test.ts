import type { ChildProcess } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ResourceLeaseItemPayload } from "@omnirelay/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  JetStreamShardOwnership,
  openJetStreamResourceLeaseQueue,
  openOwnedJetStreamResourceLeaseQueue,
} from "../src/index.js";
import { until } from "./helpers.js";
import { type NatsCluster, startNatsCluster } from "./nats-server.js";
import { expectNothingLost, startOwner } from "./owner-child.js";

// The drills on a real three-server NATS cluster (started here from the nats-server binary on free loopback
// ports), an R3 stream and R3 buckets: SIGKILL the owning dispatcher under load, SIGSTOP it into a zombie, SIGKILL the
// stream's leader server. Each prints its recovery time (RTO) and lost acknowledged items (RPO) for the guide.

let cluster: NatsCluster;
const children: ChildProcess[] = [];
beforeAll(async () => {
  cluster = await startNatsCluster(3);
}, 60_000);
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await cluster?.stop();
});

const TTL = 1500;
const setup = (shard: string, ttlMs = TTL) => ({
  servers: cluster.urls,
  stream: "OMNI_DRILL",
  subjectPrefix: "omnidrill",
  ownersBucket: "OMNI_DRILL_OWNERS",
  snapshotBucket: "OMNI_DRILL_SNAPSHOTS",
  replicas: 3,
  shard,
  ttlMs,
});
const logOptions = (shard: string) => ({
  servers: cluster.urls,
  stream: "OMNI_DRILL",
  subjectPrefix: "omnidrill",
  replicas: 3,
  shard,
});
const item = (id: string): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: id,
  payloadEncoding: "json",
});

async function nodeB(ttlMs = TTL) {
  return JetStreamShardOwnership.open({
    servers: cluster.urls,
    replicas: 3,
    bucket: setup("").ownersBucket,
    nodeId: "b",
    url: "http://b.test:8080",
    ownershipTtlMs: ttlMs,
  });
}

describe("drills on a three-server JetStream cluster (R3)", () => {
  it("SIGKILL the owner under load: B serves within TTL + replay, nothing acknowledged lost, higher tokens", async () => {
    const s = setup("kill-owner");
    const { child, printed, stderr } = startOwner(s);
    children.push(child);
    await until(() => printed.acked.size >= 200 || child.exitCode !== null, 40_000).catch(() => undefined);
    expect(stderr()).toBe("");
    expect(printed.acked.size).toBeGreaterThanOrEqual(200);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const killedAt = Date.now();

    await using b = await nodeB();
    await using owned = await openOwnedJetStreamResourceLeaseQueue({
      ownership: b,
      log: logOptions(s.shard),
      snapshotBucket: s.snapshotBucket,
      acquireWaitMs: 20 * TTL,
    });
    const rtoMs = Date.now() - killedAt;
    expect(owned.lease.epoch).toBe(2);
    const before = expectNothingLost(printed, owned);
    await owned.queue.enqueue(item("after"));
    const grants = await owned.queue.lease({ maxItems: 5 });
    for (const g of grants) expect(g.ownershipToken.fencingToken).toBeGreaterThan(before);
    console.info(
      `drill kill-owner: RTO ${rtoMs} ms (TTL ${TTL} ms, replayed ${owned.replayedEvents} events); RPO 0 of ${printed.acked.size} acknowledged enqueues`,
    );
  }, 120_000);

  it("a zombie owner (SIGSTOP until the shard moved, then SIGCONT) is refused, answers not_owner, loses nothing", async () => {
    const s = setup("zombie");
    const { child, printed, stderr } = startOwner(s);
    children.push(child);
    await until(() => printed.acked.size >= 100 || child.exitCode !== null, 40_000).catch(() => undefined);
    expect(stderr()).toBe("");
    child.kill("SIGSTOP");

    await using b = await nodeB();
    await using owned = await openOwnedJetStreamResourceLeaseQueue({
      ownership: b,
      log: logOptions(s.shard),
      snapshotBucket: s.snapshotBucket,
      acquireWaitMs: 20 * TTL,
    });
    expect(owned.lease.epoch).toBe(2);
    await owned.queue.enqueueMany([item("b1"), item("b2")]);

    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGCONT");
    await until(() => printed.error !== undefined, 30_000);
    await exited;
    expect(printed.error).toBe("resourcelease.not_owner");

    // B still appends (the zombie stored nothing after B's marker), and B's state is what its log rebuilds to.
    await owned.queue.enqueue(item("b3"));
    expectNothingLost(printed, owned);
    await using reader = await openJetStreamResourceLeaseQueue({
      log: logOptions(s.shard),
      snapshotBucket: s.snapshotBucket,
      snapshotEveryEvents: 0,
    });
    const { active: liveActive, ...live } = owned.queue.snapshot();
    const { active: readActive, ...read } = reader.queue.snapshot();
    expect(read).toEqual(live);
    expect(readActive.map((l) => l.token)).toEqual(liveActive.map((l) => l.token));
    console.info(`drill zombie: woken owner refused with ${printed.error}; ${printed.acked.size} acknowledged kept`);
  }, 120_000);

  it("SIGKILL the stream's leader server under load: appends ride through the election, nothing lost", async () => {
    const shard = "kill-server";
    await using ownership = await JetStreamShardOwnership.open({
      servers: cluster.urls,
      replicas: 3,
      bucket: setup("").ownersBucket,
      nodeId: "a",
      url: "http://a.test:8080",
      ownershipTtlMs: 20_000,
    });
    const owned = await openOwnedJetStreamResourceLeaseQueue({
      ownership,
      log: { ...logOptions(shard), appendTimeoutMs: 2000 },
      snapshotBucket: setup("").snapshotBucket,
    });
    const acked = new Map<string, number>();
    const ackTimes: number[] = [];
    let killedAt = 0;
    let victim = "";
    for (let n = 1; acked.size < 400; n++) {
      const { sequenceIds } = await owned.queue.enqueue(item(`r${n}`));
      acked.set(`r${n}`, sequenceIds[0]!);
      ackTimes.push(Date.now());
      if (n === 200) {
        const nc = await connect({ servers: cluster.urls });
        const info = await (await jetstreamManager(nc)).streams.info("OMNI_DRILL");
        await nc.close();
        victim = info.cluster?.leader ?? "";
        const server = cluster.servers.find((x) => x.name === victim);
        expect(server, `leader ${victim}`).toBeDefined();
        server!.process.kill("SIGKILL");
        killedAt = Date.now();
      }
    }
    const stallMs = Math.max(...ackTimes.slice(200).map((t, i) => t - (ackTimes[199 + i] ?? t)));
    expect(owned.queue.fault).toBeUndefined();
    await owned.close();

    // The buckets' own leaders may still be electing: the check's reader tries again until they answer.
    const open = () =>
      openJetStreamResourceLeaseQueue({
        log: logOptions(shard),
        snapshotBucket: setup("").snapshotBucket,
        snapshotEveryEvents: 0,
      });
    let opened: Awaited<ReturnType<typeof open>> | undefined;
    await until(async () => {
      opened = await open().catch(() => undefined);
      return opened !== undefined;
    }, 30_000);
    await using reader = opened!;
    const pending = new Map(reader.queue.snapshot().pending.map((p) => [p.payload.resourceId, p.sequenceId]));
    expect(pending).toEqual(acked);
    console.info(
      `drill kill-server: leader ${victim} SIGKILLed ${killedAt ? "under load" : ""}; longest stall ${stallMs} ms; RPO 0 of ${acked.size}`,
    );
  }, 120_000);
});
