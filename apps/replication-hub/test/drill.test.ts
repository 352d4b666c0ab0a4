import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import {
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  type ReplicationSourceId,
} from "@omnirelay/replicator-grpc";
import { SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { type HubProcess, hubHttp, metricValue, startHubProcess } from "./hub-process.js";
import { TcpProxy } from "./tcp-proxy.js";

// The drill: the partition lasts 10 s (CI runs it so; OMNIRELAY_DRILL_PARTITION_MS shortens it locally).
const PARTITION_MS = Number(process.env.OMNIRELAY_DRILL_PARTITION_MS ?? 10_000);

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A dispatcher-like source: numbers events 1, 2, 3… and publishes small batches without waiting for each ack. */
class Source {
  next = 1;
  maxLag = 0;
  private readonly acks: Promise<void>[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly id: ReplicationSourceId,
    readonly replicator: GrpcResourceLeaseReplicator,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const batch: ResourceLeaseReplicationEvent[] = [];
        const size = 1 + (this.next % 7);
        for (let i = 0; i < size; i++) batch.push(this.event(this.next++));
        const acked = this.replicator.publish(batch);
        this.acks.push(acked);
        // stop() still sees a rejection; this only keeps a test that failed early (and closed the replicator under
        // its publishes) from adding unhandled rejections to its report.
        acked.catch(() => {});
        // Like a dispatcher under load: every batch (an RPC) awaits its own ack, and a new one arrives every few ms.
        await Promise.race([acked, sleep(3)]);
        this.maxLag = Math.max(this.maxLag, this.replicator.lag().pendingEvents);
      }
    })();
  }

  async stop(): Promise<number> {
    this.running = false;
    await this.loop;
    await Promise.all(this.acks);
    return this.next - 1;
  }

  private event(sequenceNumber: number): ResourceLeaseReplicationEvent {
    return {
      sequenceNumber,
      eventType: "Enqueue",
      timestamp: 1_700_000_000_000 + sequenceNumber,
      metadata: { "drill.source": this.id.nodeId, "drill.sequence": String(sequenceNumber) },
    };
  }
}

async function readAll(address: string, source: ReplicationSourceId): Promise<ResourceLeaseReplicationEvent[]> {
  const client = new GrpcReplicationHubClient({ address });
  try {
    const out: ResourceLeaseReplicationEvent[] = [];
    for await (const e of client.subscribe({ source, follow: false })) out.push(e);
    return out;
  } finally {
    client.close();
  }
}

function expectExactlyOnceInOrder(events: readonly ResourceLeaseReplicationEvent[], source: string, total: number) {
  expect(events.length).toBe(total);
  events.forEach((e, i) => {
    if (e.sequenceNumber !== i + 1 || e.metadata["drill.sequence"] !== String(i + 1)) {
      throw new Error(`${source}: position ${i} holds event ${e.sequenceNumber}`);
    }
    expect(e.metadata["drill.source"]).toBe(source);
  });
}

describe("drill: two dispatchers, one hub process, kill -9 and a partition", () => {
  it(
    "ends with every event of each source exactly once, in order, gap-free; lag spikes and returns to zero",
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-drill-"));
      cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
      const backupDir = join(dataDir, "..", `${dataDir.split("/").at(-1)}-backup`);
      cleanup.push(() => rm(backupDir, { recursive: true, force: true }));
      // Plaintext on loopback, so the hub must be told its network is trusted (auth.test.ts covers identities).
      const extraArgs = ["--allow-unauthenticated", "--backup-dir", backupDir];
      let hub: HubProcess = await startHubProcess({ dataDir, extraArgs });
      const ports = { grpcPort: hub.grpcPort, httpPort: hub.httpPort };
      cleanup.push(() => hub.child.kill("SIGKILL"));
      const proxy = new TcpProxy({ host: "127.0.0.1", port: hub.grpcPort });
      const proxyPort = await proxy.start();
      cleanup.push(() => proxy.close());

      const timing = {
        connectTimeoutMs: 1000,
        ackTimeoutMs: 1000,
        reconnectInitialDelayMs: 50,
        reconnectMaxDelayMs: 500,
      };
      const a = new Source(
        { nodeId: "dispatcher-a", shard: "" },
        new GrpcResourceLeaseReplicator({
          hubs: [`127.0.0.1:${hub.grpcPort}`],
          nodeId: "dispatcher-a",
          overflow: "lag",
          maxOutboxEvents: 2000,
          ...timing,
        }),
      );
      const b = new Source(
        { nodeId: "dispatcher-b", shard: "s1" },
        new GrpcResourceLeaseReplicator({
          hubs: [`127.0.0.1:${proxyPort}`],
          nodeId: "dispatcher-b",
          shard: "s1",
          overflow: "block",
          maxOutboxEvents: 1500,
          ...timing,
        }),
      );
      cleanup.push(
        () => a.replicator.close(),
        () => b.replicator.close(),
      );
      a.start();
      b.start();
      // Both streams up and acknowledging (a fixed 600 ms was too short once on a busy 2-core CI machine), then load.
      await until(() => a.replicator.lag().ackedSequence > 0 && b.replicator.lag().ackedSequence > 0, 15_000);
      await sleep(300);

      // 1. kill -9 the hub mid-load, restart it on the same ports and data.
      const ackedBeforeKill = a.replicator.lag().ackedSequence;
      expect(ackedBeforeKill).toBeGreaterThan(0);
      hub.child.kill("SIGKILL");
      await hub.exited;
      await sleep(400);
      hub = await startHubProcess({ dataDir, extraArgs, ...ports });
      await until(() => a.replicator.lag().hub !== undefined && b.replicator.lag().hub !== undefined);
      expect(a.replicator.lag().ackedSequence).toBeGreaterThanOrEqual(ackedBeforeKill);
      await sleep(400);

      // 2. Partition source b from the hub, then heal.
      const bBefore = b.replicator.lag().ackedSequence;
      b.maxLag = 0;
      proxy.partition();
      await sleep(PARTITION_MS);
      const stuck = b.replicator.lag();
      expect(stuck.ackedSequence - bBefore).toBeLessThan(5000); // at most what was in flight
      expect(stuck.hub).toBeUndefined(); // the ack deadline dropped the stream
      proxy.heal();
      await until(() => b.replicator.lag().ackedSequence > stuck.headSequence, 20_000);
      await sleep(300);

      const totalA = await a.stop();
      const totalB = await b.stop();
      expect(b.maxLag).toBeGreaterThan(500); // the lag metric spiked during the partition
      expect(a.replicator.lag().connects).toBeGreaterThanOrEqual(2); // reconnected after the kill
      expect(b.replicator.lag().connects).toBeGreaterThanOrEqual(3); // …and after the partition
      expect(a.replicator.lag().pendingEvents).toBe(0);
      expect(b.replicator.lag().pendingEvents).toBe(0); // …and came back to zero

      const address = `127.0.0.1:${hub.grpcPort}`;
      expectExactlyOnceInOrder(await readAll(address, a.id), "dispatcher-a", totalA);
      expectExactlyOnceInOrder(await readAll(address, b.id), "dispatcher-b", totalB);
      const metrics = (await hubHttp(hub.httpPort, "/metrics")).body;
      for (const [id, total] of [
        [a.id, totalA],
        [b.id, totalB],
      ] as const) {
        const labels = { node_id: id.nodeId, shard: id.shard };
        expect(metricValue(metrics, "omnirelay_replication_hub_last_sequence", labels)).toBe(total);
        expect(metricValue(metrics, "omnirelay_replication_hub_lag_events", labels)).toBe(0);
      }
      expect((await hubHttp(hub.httpPort, "/healthz")).status).toBe(200);
      // An online backup while the hub serves holds every acknowledged event.
      const backup = await fetch(`http://127.0.0.1:${hub.httpPort}/backup`, { method: "POST" });
      expect(((await backup.json()) as { files: string[] }).files.sort()).toEqual([
        join(backupDir, "dispatcher-a.db"),
        join(backupDir, "dispatcher-b@s1.db"),
      ]);
      const copy = await SqliteResourceLeaseReplicator.open({ path: join(backupDir, "dispatcher-b@s1.db") });
      expect(await copy.lastSequence()).toBe(totalB);
      await copy.close();

      // 3. The checkpoints survive another kill -9: a fresh hub reports them before any source reconnects.
      await a.replicator.close();
      await b.replicator.close();
      hub.child.kill("SIGKILL");
      await hub.exited;
      hub = await startHubProcess({ dataDir, extraArgs: ["--allow-unauthenticated"] });
      const sources = JSON.parse((await hubHttp(hub.httpPort, "/sources")).body) as {
        sources: Array<{ nodeId: string; lastSequence: number }>;
      };
      expect(sources.sources.map((s) => [s.nodeId, s.lastSequence])).toEqual([
        ["dispatcher-a", totalA],
        ["dispatcher-b", totalB],
      ]);
    },
    PARTITION_MS + 45_000,
  );
});

describe("drill: a half-open publish stream and the restarted node", () => {
  it("the hub refuses the node's new stream while the old one looks live, and lets it in once the keepalive drops it", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-halfopen-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const hub = await startHubProcess({ dataDir, extraArgs: ["--allow-unauthenticated"] });
    cleanup.push(() => hub.child.kill("SIGKILL"));
    const proxy = new TcpProxy({ host: "127.0.0.1", port: hub.grpcPort });
    const proxyPort = await proxy.start();
    cleanup.push(() => proxy.close());
    const timing = {
      connectTimeoutMs: 2000,
      ackTimeoutMs: 2000,
      reconnectInitialDelayMs: 100,
      reconnectMaxDelayMs: 500,
    };
    const id = { nodeId: "dispatcher-h", shard: "" };
    const before = new GrpcResourceLeaseReplicator({ hubs: [`127.0.0.1:${proxyPort}`], nodeId: id.nodeId, ...timing });
    cleanup.push(() => before.close());
    await before.publish(makeEvents(1, 5));

    // The link drops and the node dies behind it: its close never reaches the hub, whose stream stays open.
    proxy.partition();
    await before.close();
    const restartedAt = Date.now();
    const after = new GrpcResourceLeaseReplicator({
      hubs: [`127.0.0.1:${hub.grpcPort}`],
      nodeId: id.nodeId,
      ...timing,
    });
    cleanup.push(() => after.close());
    const published = after.publish(makeEvents(6, 10));
    await until(() => after.lag().lastError?.code === "resourcelease.replication.grpc.source_busy");
    // The hub's keepalive (ping every 10 s, 5 s to answer) finds the old connection dead and drops its stream.
    await published;
    const waitedMs = Date.now() - restartedAt;
    expect(waitedMs).toBeLessThan(25_000);
    const labels = { node_id: id.nodeId, shard: "" };
    const metrics = (await hubHttp(hub.httpPort, "/metrics")).body;
    expect(metricValue(metrics, "omnirelay_replication_hub_busy_refusals_total", labels)).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, "omnirelay_replication_hub_last_sequence", labels)).toBe(10);
    expect((await readAll(`127.0.0.1:${hub.grpcPort}`, id)).map((e) => e.sequenceNumber)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
  }, 45_000);
});

function makeEvents(from: number, to: number): ResourceLeaseReplicationEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    sequenceNumber: from + i,
    eventType: "Enqueue" as const,
    timestamp: 1_700_000_000_000 + from + i,
    metadata: {},
  }));
}

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(20);
  }
}
