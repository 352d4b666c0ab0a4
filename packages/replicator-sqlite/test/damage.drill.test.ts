import { existsSync, readFileSync, truncateSync } from "node:fs";
import type { ResourceLeaseClient } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { SqliteResourceLeaseReplicator } from "../src/index.js";
import { built, RefusedToStart, type Running, start } from "./drill-helpers.js";
import { flipBytes, item, tempDb } from "./helpers.js";

const FRAME = 24 + 4096;

async function refusal(path: string) {
  try {
    const running = await start(path);
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
});
