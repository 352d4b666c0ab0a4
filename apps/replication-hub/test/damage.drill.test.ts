import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import {
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  type ReplicationHubSourceStatus,
} from "@omnirelay/replicator-grpc";
import { SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { type HubProcess, hubHttp, startHubProcess } from "./hub-process.js";

// Corruption drill for the hub's store: a dispatcher keeps its own SQLite log and replicates to a hub process; the hub
// is killed -9 and a page in the middle of the source's file is damaged. The restarted hub must not serve a short log:
// it starts (it would serve any other source), lists the source as failed with the documented codes (store_failed,
// caused by resourcelease.sqlite.corrupt) and answers its calls with them. With the damaged file moved aside and
// nothing in its place, a hello must not start an empty log. The repair — a backup of the dispatcher's own log (the
// other sink) in the damaged file's place — must give back every event exactly once on the dispatcher's next hello,
// without a restart, after which replication goes on from where it stopped.

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const SOURCE = { nodeId: "dispatcher-a", shard: "" };
const extraArgs = ["--allow-unauthenticated", "--durability", "sync"];

const event = (n: number): ResourceLeaseReplicationEvent => ({
  sequenceNumber: n,
  eventType: "Enqueue",
  timestamp: 1_700_000_000_000 + n,
  metadata: { "drill.sequence": String(n), pad: "x".repeat(200) },
});

async function readAll(port: number): Promise<number[]> {
  const client = new GrpcReplicationHubClient({ address: `127.0.0.1:${port}` });
  try {
    const out: number[] = [];
    for await (const e of client.subscribe({ source: SOURCE, follow: false })) out.push(e.sequenceNumber);
    return out;
  } finally {
    client.close();
  }
}

/** The dispatcher: its own log and the hub, both given every event (the hub acknowledges after its commit). */
async function publish(
  port: number,
  own: SqliteResourceLeaseReplicator,
  [from, to]: readonly [number, number],
): Promise<void> {
  const hub = new GrpcResourceLeaseReplicator({ hubs: [`127.0.0.1:${port}`], nodeId: SOURCE.nodeId });
  try {
    for (let n = from; n <= to; n += 25) {
      const batch = Array.from({ length: Math.min(25, to - n + 1) }, (_, i) => event(n + i));
      await own.publish(batch);
      await hub.publish(batch);
    }
  } finally {
    await hub.close();
  }
}

/** The source's status in the hub's `/sources`. */
async function status(hub: HubProcess): Promise<ReplicationHubSourceStatus | undefined> {
  const body = (await hubHttp(hub.httpPort, "/sources")).body;
  return (JSON.parse(body) as { sources: ReplicationHubSourceStatus[] }).sources.find(
    (s) => s.nodeId === SOURCE.nodeId,
  );
}

async function killed(hub: HubProcess): Promise<void> {
  hub.child.kill("SIGKILL");
  await hub.exited;
}

describe("hub store corruption drill: a damaged source log is refused, and is restored from the dispatcher's log", () => {
  it("serves the source as failed (store_failed caused by resourcelease.sqlite.corrupt); the restored log serves every event once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "omnirelay-hub-damage-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const dataDir = join(dir, "hub");
    const own = await SqliteResourceLeaseReplicator.open({ path: join(dir, "dispatcher-a.db"), durability: "sync" });
    cleanup.push(() => own.close());
    let hub = await startHubProcess({ dataDir, extraArgs });
    cleanup.push(() => hub.child.kill("SIGKILL"));
    await publish(hub.grpcPort, own, [1, 600]);
    expect(await readAll(hub.grpcPort)).toHaveLength(600);
    await killed(hub);

    // A frame in the middle of the hub's log goes bad (a disk error, a stray write). After kill -9 the rows are in
    // the WAL (nothing checkpointed them into the main file yet), so that is where the damage lands.
    const file = join(dataDir, "dispatcher-a.db");
    const wal = `${file}-wal`;
    const damaged = existsSync(wal) && statSync(wal).size > statSync(file).size ? wal : file;
    const bytes = readFileSync(damaged);
    // A WAL frame is its 24-byte header and one page, of the size the WAL's header states (the main file's at 16).
    const FRAME = 24 + (damaged === wal ? bytes.readUInt32BE(8) : bytes.readUInt16BE(16));
    const middle = 32 + Math.floor((bytes.length - 32) / FRAME / 2) * FRAME;
    for (let i = middle + 24 + 100; i < middle + 24 + 600; i++) bytes[i] = bytes[i]! ^ 0xa5;
    writeFileSync(damaged, bytes);
    hub = await startHubProcess({ dataDir, extraArgs });
    const failedLine = hub
      .stderr()
      .split("\n")
      .find((line) => line.includes('"level":"error"'));
    expect(failedLine, hub.stderr()).toBeDefined();
    const logged = JSON.parse(failedLine!) as { source: string; code: string; cause?: object };
    expect(logged.source).toBe("dispatcher-a");
    expect(logged.code).toBe(ErrorCodes.replicationHub.storeFailed);
    expect(logged.cause).toMatchObject({ code: ErrorCodes.sqlite.corrupt, metadata: { file: "wal" } });
    expect((await status(hub))?.failed).toMatchObject({
      code: ErrorCodes.replicationHub.storeFailed,
      causeCode: ErrorCodes.sqlite.corrupt,
    });
    await expect(readAll(hub.grpcPort)).rejects.toMatchObject({
      status: "unavailable",
      code: ErrorCodes.replicationHub.storeFailed,
    });

    // The damaged file moves aside (kept for a post-mortem). With nothing in its place yet, the dispatcher's hellos
    // are refused: the hub does not start an empty log for a source that had one.
    renameSync(file, `${file}.damaged`);
    if (existsSync(wal)) renameSync(wal, `${file}.damaged-wal`);
    const resumed = publish(hub.grpcPort, own, [601, 625]);
    resumed.catch(() => undefined);
    await expect
      .poll(async () => (await status(hub))?.failed?.message ?? "", { timeout: 15_000 })
      .toContain("no longer in the store");
    expect(existsSync(file)).toBe(false);

    // The repair: the dispatcher's own log takes its place (written aside, then renamed, so the hub never opens a
    // half-written file), and the dispatcher's next hello brings the source back.
    await own.backup(`${file}.restoring`);
    renameSync(`${file}.restoring`, file);
    await resumed;
    expect((await status(hub))?.failed).toBeUndefined();
    expect(await readAll(hub.grpcPort)).toEqual(Array.from({ length: 625 }, (_, i) => i + 1));
    // Replication goes on above the restored log, gap-free.
    await publish(hub.grpcPort, own, [626, 700]);
    expect(await readAll(hub.grpcPort)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
  }, 60_000);
});
