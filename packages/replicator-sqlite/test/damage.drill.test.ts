import { existsSync, readFileSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { ErrorCodes, type ResourceLeaseClient, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SqliteDeterministicStateStore, SqliteResourceLeaseReplicator } from "../src/index.js";
import { DEFAULT_PAGE_SIZE_BYTES } from "../src/options.js";
import { built, RefusedToStart, type Running, start } from "./drill-helpers.js";
import { flipBytes, item, tempDb, tempDir } from "./helpers.js";

const FRAME = 24 + DEFAULT_PAGE_SIZE_BYTES; // the logs here have the default page size

async function refusal(path: string, ...extra: string[]) {
  try {
    const running = await start(path, ...extra);
    running.child.kill("SIGKILL");
    await running.exited;
    await running.client.close();
  } catch (error) {
    if (error instanceof RefusedToStart) return error.refusal;
    throw error;
  }
  throw new Error("the dispatcher started on a damaged log");
}

async function kill(running: Running): Promise<void> {
  running.child.kill("SIGKILL");
  await running.exited;
  await running.client.close();
}

/** The `lastSequence` of the high-water record beside the log. */
function recorded(path: string): number {
  return (JSON.parse(readFileSync(`${path}.hwm`, "utf8").split("\n")[0]!) as { lastSequence: number }).lastSequence;
}

/** Enqueues `count` items one call at a time (each acknowledged after its commit); returns their sequence ids. */
async function enqueue(client: ResourceLeaseClient, prefix: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push((await client.enqueue(item(`${prefix}-${i}`))).sequenceId);
  return ids;
}

describe("kill -9 drill: a damaged data directory never starts silently short", () => {
  it("log truncated to 0 bytes after kill -9: refused with the documented code; repair restarts it above every old number", async () => {
    expect(existsSync(built), "build the package first (pnpm build)").toBe(true);
    const path = tempDb("drill.db");
    const first = await start(path);
    const ids = await enqueue(first.client, "a", 300);
    const grants = await first.client.lease({ maxItems: 120, peerId: "w" });
    for (const g of grants.slice(0, 60))
      await first.client.fail(g.ownershipToken, { requeue: false, reason: "poison" });
    for (const g of grants.slice(60, 90)) await first.client.complete(g.ownershipToken);
    const stats = await first.client.stats();
    expect(stats).toMatchObject({ pendingCount: 180, deadLetterCount: 60, activeLeaseCount: 30 });
    // The record follows the log within its interval (1 s): wait until it covers everything acknowledged.
    await expect.poll(() => recorded(path), { timeout: 10_000 }).toBe(stats.lastEventSequence);
    await kill(first);

    truncateSync(path, 0);
    const why = await refusal(path);
    expect(why.code).toBe("resourcelease.sqlite.corrupt");
    expect(why.metadata).toMatchObject({
      reason: "behind_high_water",
      file: "log",
      lastSequence: "0",
      highWaterSequence: String(stats.lastEventSequence),
    });

    const report = await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
    expect(report).toMatchObject({
      repaired: true,
      resumeSequence: stats.lastEventSequence,
      lastFencingToken: stats.lastFencingToken,
      lastSequenceId: Math.max(...ids),
    });
    const again = await start(path);
    const [next] = await enqueue(again.client, "b", 1);
    expect(next).toBe(Math.max(...ids) + 1);
    const [grant] = await again.client.lease({ peerId: "w" });
    expect(grant!.ownershipToken.fencingToken).toBe(stats.lastFencingToken + 1);
    // Every token from before the loss is fenced.
    const stale = await again.client.complete(grants[95]!.ownershipToken).then(
      () => "accepted",
      (e: { code?: string }) => e.code,
    );
    expect(stale).toBe("resourcelease.lease.fenced");
    await kill(again);
  }, 60_000);

  it("64 flipped WAL bytes after kill -9: refused, not started without the acknowledged enqueues; repair recovers the prefix", async () => {
    expect(existsSync(built), "build the package first (pnpm build)").toBe(true);
    const path = tempDb("drill.db");
    const first = await start(path);
    const ids = await enqueue(first.client, "a", 1000);
    // Frames of the live WAL generation (the header's salt) that have committed frames after them.
    const live = () => {
      const wal = readFileSync(`${path}-wal`);
      const salt = wal.readUInt32BE(16);
      const out: Array<{ index: number; commit: boolean }> = [];
      for (let i = 0, at = 32; at + FRAME <= wal.length; i++, at += FRAME) {
        if (wal.readUInt32BE(at + 8) !== salt) break;
        out.push({ index: i, commit: wal.readUInt32BE(at + 4) !== 0 });
      }
      return out;
    };
    for (let round = 0; live().length < 40 && round < 20; round++)
      ids.push(...(await enqueue(first.client, `r${round}`, 100)));
    await kill(first);
    const frames = live();
    expect(frames.length).toBeGreaterThanOrEqual(40);
    const target = frames[Math.floor(frames.length / 3)]!.index;
    const commitsAfter = frames.filter((f) => f.index > target && f.commit).length;
    expect(commitsAfter).toBeGreaterThan(5);
    flipBytes(`${path}-wal`, 32 + target * FRAME + 24 + 512, 64);

    const why = await refusal(path);
    expect(why.code).toBe("resourcelease.sqlite.corrupt");
    expect(why.metadata).toMatchObject({ reason: "wal_checksum", file: "wal", frame: String(target) });

    const report = await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
    const acked = Math.max(...ids);
    expect(report).toMatchObject({ repaired: true, reason: "wal_checksum", resumeSequence: acked });
    expect(report.lastGoodSequence).toBeLessThan(acked - commitsAfter + 1);
    expect(report.lostRange).toEqual([report.lastGoodSequence + 1, acked]);
    const again = await start(path);
    const stats = await again.client.stats();
    // What the repair kept is served; what it lost is reported, and no number is handed out twice.
    expect(stats.pendingCount).toBe(report.lastGoodSequence);
    const [next] = await enqueue(again.client, "b", 1);
    expect(next).toBe(acked + 1);
    await kill(again);
  }, 60_000);

  it("a damaged row under a downstream sink: refused at its sequence; after the repair no number reaches the sink twice", async () => {
    expect(existsSync(built), "build the package first (pnpm build)").toBe(true);
    const dir = tempDir();
    const [path, state, effects] = [join(dir, "log.db"), join(dir, "state.db"), join(dir, "effects.txt")];
    const first = await start(path, state, effects);
    await enqueue(first.client, "a", 150);
    for (const g of await first.client.lease({ maxItems: 50, peerId: "w" }))
      await first.client.complete(g.ownershipToken);
    const { lastEventSequence } = await first.client.stats();
    await expect.poll(() => recorded(path), { timeout: 10_000 }).toBe(lastEventSequence);
    await kill(first);
    // Row 120's bytes change under its checksum (a stray write into the table).
    const db = new Database(path);
    db.prepare("UPDATE resourcelease_events SET data = ? WHERE sequence = 120").run(Buffer.from("{}"));
    db.close();

    const why = await refusal(path, state, effects);
    expect(why.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(why.metadata).toMatchObject({ reason: "checksum", sequence: "120" });

    const report = await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
    // Rows up to the damage are kept; a snapshot above row 120 keeps the state whole (only history is gone); the
    // events the record says were committed but no readable copy holds are reported lost.
    expect(report).toMatchObject({ repaired: true, reason: "checksum", resumeSequence: lastEventSequence });
    expect(report.lastGoodSequence).toBeGreaterThanOrEqual(119);
    const lost =
      report.lastGoodSequence < lastEventSequence ? [report.lastGoodSequence + 1, lastEventSequence] : undefined;
    expect(report.lostRange).toEqual(lost);
    // The sink recorded 1..last before the damage; the repaired node numbers on above them, so the sink's records of
    // the lost events are never overwritten by other events under the same numbers.
    const again = await start(path, state, effects);
    await enqueue(again.client, "b", 20);
    await kill(again);
    await kill(await start(path, state, effects)); // the sink catches up on everything committed

    const log = await SqliteResourceLeaseReplicator.open({ path });
    const events: ResourceLeaseReplicationEvent[] = [];
    for await (const e of log.read(lastEventSequence + 1)) events.push(e);
    await log.close();
    expect(events[0]!.sequenceNumber).toBe(lastEventSequence + 1);
    await using store = await SqliteDeterministicStateStore.open({ path: state });
    for (const e of events) {
      const effect = await store.get(`resourcelease.replication/seq/${e.sequenceNumber}`);
      expect(JSON.parse(new TextDecoder().decode(effect!.payload))).toEqual(encodeReplicationEvent(e));
    }
    const ran = readFileSync(effects, "utf8").trim().split("\n").map(Number);
    expect(new Set(ran).size).toBe(ran.length); // each number's side effect ran once
    expect(ran.length).toBe(lastEventSequence + events.length);
  }, 30_000);
});
