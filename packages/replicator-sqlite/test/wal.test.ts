import { copyFileSync, existsSync, readFileSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { ErrorCodes } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { DEFAULT_PAGE_SIZE_BYTES } from "../src/options.js";
import { scanWal } from "../src/wal.js";
import { flipBytes, item, rejection, tempDir } from "./helpers.js";

// Every log here is made with the default page size; `frames` checks that the WAL header agrees.
const PAGE = DEFAULT_PAGE_SIZE_BYTES;
const FRAME = 24 + PAGE;
const frameOffset = (i: number) => 32 + i * FRAME;

/** Frame headers of a WAL: page number, commit size (0 unless a commit frame) and salt-1. */
function frames(wal: string): Array<{ page: number; commit: number; salt: number }> {
  const buf = readFileSync(wal);
  expect(buf.readUInt32BE(8)).toBe(PAGE);
  const out = [];
  for (let at = 32; at + FRAME <= buf.length; at += FRAME) {
    out.push({ page: buf.readUInt32BE(at), commit: buf.readUInt32BE(at + 4), salt: buf.readUInt32BE(at + 8) });
  }
  return out;
}

/**
 * Enqueues `items` items one commit each through a real queue and, while the log is still open, copies its files
 * (database, WAL and high-water record) to `crash/`: exactly what a kill -9 at that moment leaves on disk.
 */
async function crashImage(items: number, options: { highWaterIntervalMs?: number } = {}) {
  const dir = tempDir();
  const path = join(dir, "log.db");
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: 0,
    queueOptions: { capacity: 100_000 },
    replicatorOptions: { highWaterIntervalMs: options.highWaterIntervalMs ?? 3_600_000 },
  });
  for (let i = 0; i < items; i++) await durable.queue.enqueue(item(i));
  // Let any record write in flight finish, so the copy is consistent.
  if (options.highWaterIntervalMs === 0) {
    await expect.poll(() => durable.replicator.stats().highWaterSequence).toBe(items);
  }
  const crash = join(dir, "crash.db");
  for (const suffix of ["", "-wal"]) copyFileSync(path + suffix, crash + suffix);
  copyFileSync(`${path}.hwm`, `${crash}.hwm`);
  await durable.close();
  return crash;
}

describe("WAL damage after a crash", () => {
  it("64 flipped bytes in the middle of the WAL: refused (wal_checksum), not silently short, even with a stale record", async () => {
    const crash = await crashImage(300);
    const wal = `${crash}-wal`;
    const list = frames(wal);
    expect(list.every((f) => f.salt === list[0]!.salt)).toBe(true); // one WAL generation: every frame is live
    const target = Math.floor(list.length / 2);
    expect(list.slice(target + 1).some((f) => f.commit > 0)).toBe(true);
    flipBytes(wal, frameOffset(target) + 24 + 1000, 64);
    const damaged = readFileSync(wal);

    const err = await rejection(SqliteResourceLeaseReplicator.open({ path: crash }));
    expect(err).toMatchObject({ status: "data-loss", code: ErrorCodes.sqlite.corrupt });
    expect(err.metadata).toMatchObject({
      reason: "wal_checksum",
      file: "wal",
      path: wal,
      frame: String(target),
      offset: String(frameOffset(target)),
    });
    expect((await rejection(openDurableResourceLeaseQueue({ path: crash }))).metadata.reason).toBe("wal_checksum");
    // Refusing left the WAL as it was (SQLite never opened it, so never checkpointed the good prefix over it).
    expect(readFileSync(wal).equals(damaged)).toBe(true);

    const report = await SqliteResourceLeaseReplicator.repair(crash, { truncateAfterLastGood: true });
    expect(report).toMatchObject({ repaired: true, reason: "wal_checksum", file: "wal", resumeSequence: 300 });
    expect(report.lastGoodSequence).toBeLessThan(300);
    expect(report.lostRange).toEqual([report.lastGoodSequence + 1, 300]);
    expect(report.movedAside.map((p) => p.slice(crash.length))).toEqual([
      expect.stringMatching(/^\.damaged-\d{8}T\d{6}Z$/),
      expect.stringMatching(/^\.damaged-\d{8}T\d{6}Z-wal$/),
    ]);
    expect(readFileSync(report.movedAside[1]!).equals(damaged)).toBe(true);
    await using again = await openDurableResourceLeaseQueue({ path: crash, queueOptions: { capacity: 100_000 } });
    expect(again.queue.stats().pendingCount).toBe(report.lastGoodSequence);
    expect((await again.queue.enqueue(item("next"))).sequenceIds).toEqual([301]);
  });

  it("a torn tail (the last frame cut short) is normal after a crash: it opens", async () => {
    const crash = await crashImage(200);
    const wal = `${crash}-wal`;
    truncateSync(wal, statSync(wal).size - FRAME / 2);
    expect(scanWal(wal)?.damage).toBeUndefined();
    await using log = await SqliteResourceLeaseReplicator.open({ path: crash });
    expect(await log.lastSequence()).toBeGreaterThanOrEqual(198);
  });

  it("damage in the last commit looks like a torn write: the record catches it only when it is current", async () => {
    // Record written at open only (stale): the last commit's loss is inside the window and goes unnoticed.
    const stale = await crashImage(200);
    const last = frames(`${stale}-wal`).length - 1;
    flipBytes(`${stale}-wal`, frameOffset(last) + 24 + 10, 64);
    const opened = await SqliteResourceLeaseReplicator.open({ path: stale });
    expect(await opened.lastSequence()).toBe(199);
    await opened.close();
    // Record written after every commit (highWaterIntervalMs: 0): the same damage is refused.
    const current = await crashImage(200, { highWaterIntervalMs: 0 });
    const lastFrame = frames(`${current}-wal`).length - 1;
    flipBytes(`${current}-wal`, frameOffset(lastFrame) + 24 + 10, 64);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path: current }));
    expect(err.metadata).toMatchObject({ reason: "behind_high_water", lastSequence: "199", highWaterSequence: "200" });
  });

  it("a damaged WAL header with committed frames after it: refused (wal_header)", async () => {
    const crash = await crashImage(100);
    flipBytes(`${crash}-wal`, 0, 8);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path: crash }));
    expect(err.metadata).toMatchObject({ reason: "wal_header", file: "wal", frame: "-1" });
    const report = await SqliteResourceLeaseReplicator.repair(crash, { truncateAfterLastGood: true });
    expect(report.resumeSequence).toBe(100);
    await using again = await openDurableResourceLeaseQueue({ path: crash, queueOptions: { capacity: 100_000 } });
    expect((await again.queue.enqueue(item("next"))).sequenceIds).toEqual([101]);
  });

  it("damage in frames of an older WAL generation (already checkpointed) loses nothing and is not refused", async () => {
    const crash = await crashImage(1500); // past the 1000-page autocheckpoint: the WAL restarted over old frames
    const wal = `${crash}-wal`;
    const list = frames(wal);
    const live = list[0]!.salt;
    const stale = list.findIndex((f) => f.salt !== live);
    expect(stale).toBeGreaterThan(0);
    flipBytes(wal, frameOffset(stale) + 24 + 100, 64);
    await using log = await SqliteResourceLeaseReplicator.open({ path: crash });
    expect(await log.lastSequence()).toBe(1500);
  });

  it("a WAL that changes under the check because another process writes it is reported as locked, not corrupt", async () => {
    const dir = tempDir();
    const path = join(dir, "log.db");
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    for (let i = 0; i < 50; i++) await durable.queue.enqueue(item(i));
    flipBytes(`${path}-wal`, frameOffset(10) + 24 + 100, 64);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, busyTimeoutMs: 0 }));
    expect(err.code).toBe(ErrorCodes.sqlite.locked);
    await durable.queue.close();
    await durable.replicator.close().catch(() => undefined);
    expect(existsSync(path)).toBe(true);
  });
});
