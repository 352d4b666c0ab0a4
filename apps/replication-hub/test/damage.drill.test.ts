import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { GrpcReplicationHubClient, GrpcResourceLeaseReplicator } from "@omnirelay/replicator-grpc";
import { SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { type HubProcess, startHubProcess } from "./hub-process.js";

// Corruption drill for the hub's store: a dispatcher keeps its own SQLite log and replicates to a hub process; the hub
// is killed -9 and a page in the middle of the source's file is damaged. The hub must refuse to start with the
// documented codes (store_failed, caused by resourcelease.sqlite.corrupt) instead of serving a short log, and the
// repair — move the damaged file aside, put a backup of the dispatcher's own log (the other sink) in its place —
// must give back every event exactly once, after which replication goes on from where it stopped.

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

async function killed(hub: HubProcess): Promise<void> {
  hub.child.kill("SIGKILL");
  await hub.exited;
}

describe("hub store corruption drill: a damaged source log stops the hub, and is restored from the dispatcher's log", () => {
  it("refuses to start with store_failed caused by resourcelease.sqlite.corrupt; the restored log serves every event once", async () => {
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
    const refusal = await startHubProcess({ dataDir, extraArgs }).then(
      (started) => {
        hub = started;
        return "started";
      },
      (error: Error) => error.message,
    );
    const failed = refusal.split("\n").find((line) => line.startsWith('{"event":"failed"'));
    expect(failed, refusal).toBeDefined();
    const codes = JSON.parse(failed!) as { code: string; metadata: Record<string, string>; cause?: object };
    expect(codes.code).toBe(ErrorCodes.replicationHub.storeFailed);
    expect(codes.metadata["replication.source"]).toBe("dispatcher-a");
    expect(codes.cause).toMatchObject({ code: ErrorCodes.sqlite.corrupt, metadata: { file: "wal" } });

    // The repair: the damaged file moves aside (kept for a post-mortem); the dispatcher's own log takes its place.
    renameSync(file, `${file}.damaged`);
    if (existsSync(wal)) renameSync(wal, `${file}.damaged-wal`);
    await own.backup(file);
    hub = await startHubProcess({ dataDir, extraArgs });
    expect(await readAll(hub.grpcPort)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    // Replication goes on above the restored log, gap-free.
    await publish(hub.grpcPort, own, [601, 700]);
    expect(await readAll(hub.grpcPort)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
  }, 30_000);
});
