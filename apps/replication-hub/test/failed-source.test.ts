import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes } from "@omnirelay/core";
import {
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  type ReplicationSourceId,
} from "@omnirelay/replicator-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { hubEvents, hubHttp, hubSources, readAllFromHub, startHubProcess } from "./hub-process.js";

// One node's SQLite file at the hub is damaged while the hub is down. The restarted `omnirelay-hub` must serve every
// other node, list the damaged source as failed (/sources, /metrics), answer its calls with the open error, and take
// it back — without a restart — once a good copy of the file is in place and the node says hello again.

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const extraArgs = ["--allow-unauthenticated", "--durability", "sync"];
const HEALTHY = { nodeId: "node-a", shard: "" };
const DAMAGED = { nodeId: "node-b", shard: "orders" };

const events = (from: number, to: number) => hubEvents(from, to, 100);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function replicator(port: number, source: ReplicationSourceId) {
  const r = new GrpcResourceLeaseReplicator({
    hubs: [`127.0.0.1:${port}`],
    nodeId: source.nodeId,
    shard: source.shard,
  });
  cleanup.push(() => r.close().catch(() => undefined));
  return r;
}

describe("omnirelay-hub with one source's log damaged", () => {
  it("serves the other sources, reports the damaged one as failed, and takes back a good copy on the next hello", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-failed-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startHubProcess({ dataDir, extraArgs });
    cleanup.push(() => first.child.kill("SIGKILL"));
    await replicator(first.grpcPort, HEALTHY).publish(events(1, 40));
    await replicator(first.grpcPort, DAMAGED).publish(events(1, 30));
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    // A good copy is kept aside (the operator's backup); then the header and first page of the file go bad.
    const file = join(dataDir, "node-b@orders.db");
    const good = join(dataDir, "good-copy");
    copyFileSync(file, good);
    expect(existsSync(`${file}-wal`)).toBe(false);
    const bytes = readFileSync(file);
    for (let i = 0; i < 4096; i++) bytes[i] = (i * 31 + 7) & 0xff;
    writeFileSync(file, bytes);

    const hub = await startHubProcess({ dataDir, extraArgs });
    cleanup.push(() => hub.child.kill("SIGKILL"));
    const errorLine = hub
      .stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === "error");
    expect(errorLine).toEqual([
      expect.objectContaining({ source: "node-b@orders", code: ErrorCodes.replicationHub.storeFailed }),
    ]);
    expect(String(errorLine[0]!.message)).toMatch(/^Cannot open the log of node-b@orders: /);

    // /sources and /metrics list it as failed; the hub stays ready (it serves the others).
    const listed = await hubSources(hub.httpPort);
    expect(listed.map((s) => [s.nodeId, s.lastSequence, s.failed?.code])).toEqual([
      ["node-a", 40, undefined],
      ["node-b", 0, ErrorCodes.replicationHub.storeFailed],
    ]);
    const causeCode = listed[1]!.failed!.causeCode;
    expect(causeCode).toMatch(/^resourcelease\.sqlite\./);
    const ready = await hubHttp(hub.httpPort, "/readyz");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: "serving", sources: 2, failedSources: 1 });
    const metrics = (await hubHttp(hub.httpPort, "/metrics")).body;
    expect(metrics).toContain('omnirelay_replication_hub_source_failed{node_id="node-a",shard=""} 0');
    expect(metrics).toContain(
      `omnirelay_replication_hub_source_failed{node_id="node-b",shard="orders",code="${ErrorCodes.replicationHub.storeFailed}",cause_code="${causeCode}"} 1`,
    );

    // The healthy source publishes and serves every acknowledged event.
    await replicator(hub.grpcPort, HEALTHY).publish(events(41, 60));
    expect(await readAllFromHub(hub.grpcPort, HEALTHY)).toEqual(range(1, 60));

    // The damaged one answers Subscribe, Checkpoint and publish with UNAVAILABLE store_failed; nothing is written.
    const refused = { status: "unavailable", code: ErrorCodes.replicationHub.storeFailed };
    await expect(readAllFromHub(hub.grpcPort, DAMAGED)).rejects.toMatchObject(refused);
    const reader = new GrpcReplicationHubClient({ address: `127.0.0.1:${hub.grpcPort}` });
    cleanup.push(() => reader.close());
    await expect(reader.checkpoint(DAMAGED)).rejects.toMatchObject(refused);
    const toDamaged = replicator(hub.grpcPort, DAMAGED);
    const pending = toDamaged.publish(events(31, 35));
    pending.catch(() => undefined);
    await expect.poll(() => toDamaged.lag().lastError?.code, { timeout: 10_000 }).toBe(refused.code);
    expect(toDamaged.lag().lastError?.status).toBe("unavailable");
    expect(readFileSync(file).subarray(0, 4096).equals(bytes.subarray(0, 4096))).toBe(true);

    // The operator puts the good copy back: the node's next hello (the hub retries the open every 5 s at most)
    // brings the source back without a restart, and it resumes where the good copy ends.
    copyFileSync(good, `${file}.restoring`);
    renameSync(`${file}.restoring`, file);
    await pending;
    expect(await readAllFromHub(hub.grpcPort, DAMAGED)).toEqual(range(1, 35));
    const after = await hubSources(hub.httpPort);
    expect(after.map((s) => [s.nodeId, s.lastSequence, s.failed])).toEqual([
      ["node-a", 60, undefined],
      ["node-b", 35, undefined],
    ]);
    expect(JSON.parse((await hubHttp(hub.httpPort, "/readyz")).body)).toMatchObject({ failedSources: 0 });
  }, 30_000);
});
