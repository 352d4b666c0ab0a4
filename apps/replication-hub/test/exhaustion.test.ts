import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes } from "@omnirelay/core";
import { GrpcResourceLeaseReplicator, type ReplicationSourceId } from "@omnirelay/replicator-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { hubEvents, hubHttp, hubSources, readAllFromHub, startHubProcess } from "./hub-process.js";

// Callers that try to exhaust a running `omnirelay-hub`: a flood of new source ids (each one a log, a writer thread,
// ~16 MiB and 6 file descriptors), the longest source ids the protocol allows, and backups requested all at once.

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const extraArgs = ["--allow-unauthenticated", "--durability", "sync"];

const events = (from: number, to: number) => hubEvents(from, to, 200);

function replicator(port: number, source: ReplicationSourceId) {
  const r = new GrpcResourceLeaseReplicator({ hubs: [`127.0.0.1:${port}`], ...source });
  cleanup.push(() => r.close().catch(() => undefined));
  return r;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function start(dataDir: string, more: readonly string[] = []) {
  const hub = await startHubProcess({ dataDir, extraArgs: [...extraArgs, ...more] });
  cleanup.push(() => hub.child.kill("SIGKILL"));
  return hub;
}

describe("omnirelay-hub under resource exhaustion", () => {
  it("refuses a new source past --max-sources with RESOURCE_EXHAUSTED and creates no log for it", async () => {
    const dataDir = await tempDir("omnirelay-hub-cap-");
    const hub = await start(dataDir, ["--max-sources", "2"]);
    const first = replicator(hub.grpcPort, { nodeId: "node-1", shard: "" });
    await first.publish(events(1, 5));
    await replicator(hub.grpcPort, { nodeId: "node-2", shard: "" }).publish(events(1, 5));

    // Before the cap, every hello for a new id opened one more log and writer thread: 400 ids took the hub to 6.5 GiB.
    const third = replicator(hub.grpcPort, { nodeId: "node-3", shard: "" });
    third.publish(events(1, 5)).catch(() => undefined);
    await expect
      .poll(() => third.lag().lastError?.code, { timeout: 10_000 })
      .toBe(ErrorCodes.replicationHub.storeFailed);
    expect(third.lag().lastError).toMatchObject({
      status: "resource-exhausted",
      metadata: { "replication.source": "node-3", limit: "2" },
    });
    expect(existsSync(join(dataDir, "node-3.db"))).toBe(false);
    const listed = await hubSources(hub.httpPort);
    expect(listed.map((s) => [s.nodeId, s.lastSequence, s.failed?.message.includes("--max-sources") ?? false])).toEqual(
      [
        ["node-1", 5, false],
        ["node-2", 5, false],
        ["node-3", 0, true],
      ],
    );
    // The sources within the cap are served as before.
    await first.publish(events(6, 8));
    expect(await readAllFromHub(hub.grpcPort, { nodeId: "node-1", shard: "" })).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // A lower cap after a restart never hides stored events: every existing log opens.
    hub.child.kill("SIGTERM");
    expect(await hub.exited).toBe(0);
    const again = await start(dataDir, ["--max-sources", "1"]);
    expect((await hubSources(again.httpPort)).map((s) => [s.nodeId, s.lastSequence, s.failed])).toEqual([
      ["node-1", 8, undefined],
      ["node-2", 5, undefined],
    ]);
  }, 30_000);

  it("stores and serves a source with the longest ids the protocol allows, across a restart and a backup", async () => {
    const dataDir = await tempDir("omnirelay-hub-long-");
    const backupDir = join(await tempDir("omnirelay-hub-long-backup-"), "copy");
    const hub = await start(dataDir, ["--backup-dir", backupDir]);
    // 128 + 1 + 128 characters: `<key>.db` and its companions used to exceed a 255-byte file name, so the open
    // failed (SQLITE_CANTOPEN) and the source was answered UNAVAILABLE forever.
    const longest = { nodeId: "n".repeat(128), shard: "s".repeat(128) };
    const near = { nodeId: "m".repeat(128), shard: "t".repeat(95) };
    for (const source of [longest, near]) {
      const r = replicator(hub.grpcPort, source);
      r.publish(events(1, 3)).catch(() => undefined);
      await expect.poll(() => r.lag().ackedSequence, { timeout: 10_000 }).toBe(3);
    }
    expect(await readAllFromHub(hub.grpcPort, longest)).toEqual([1, 2, 3]);
    expect((await hubHttp(hub.httpPort, "/backup", { method: "POST" })).status).toBe(200);

    hub.child.kill("SIGTERM");
    expect(await hub.exited).toBe(0);
    for (const dir of [dataDir, backupDir]) {
      const again = await start(dir);
      expect(
        (await hubSources(again.httpPort)).map((s) => [s.nodeId.length, s.shard.length, s.lastSequence, s.failed]),
      ).toEqual([
        [128, 95, 3, undefined],
        [128, 128, 3, undefined],
      ]);
      expect(await readAllFromHub(again.grpcPort, longest)).toEqual([1, 2, 3]);
      again.child.kill("SIGTERM");
      await again.exited;
    }
  }, 30_000);

  it("runs one backup at a time: concurrent POST /backup get 429, never a 500 or a listed file that is missing", async () => {
    const dataDir = await tempDir("omnirelay-hub-backups-");
    const backupDir = join(await tempDir("omnirelay-hub-backups-copy-"), "copy");
    const hub = await start(dataDir, ["--backup-dir", backupDir]);
    const ids = ["b1", "b2", "b3"].map((nodeId) => ({ nodeId, shard: "" }));
    for (const id of ids) await replicator(hub.grpcPort, id).publish(events(1, 3000));

    // 30 at once used to give two or three 500 "disk I/O error", and 200s listing b1.db while b1.db was gone.
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await hubHttp(hub.httpPort, "/backup", { method: "POST" });
        return { status: res.status, body: JSON.parse(res.body) as { files?: string[]; code?: string } };
      }),
    );
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(ok.length + refused.length).toBe(answers.length);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]!.body.code).toBe(ErrorCodes.rpc.rateLimited);
    for (const file of ok.flatMap((a) => a.body.files ?? [])) expect(existsSync(file)).toBe(true);

    // Once it has finished, the next request backs up again; the copy opens with every acknowledged event.
    expect((await hubHttp(hub.httpPort, "/backup", { method: "POST" })).status).toBe(200);
    const restored = await start(backupDir);
    expect((await hubSources(restored.httpPort)).map((s) => [s.nodeId, s.lastSequence])).toEqual([
      ["b1", 3000],
      ["b2", 3000],
      ["b3", 3000],
    ]);
  }, 60_000);
});
