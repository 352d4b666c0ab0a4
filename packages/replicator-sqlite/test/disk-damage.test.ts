import { copyFileSync, existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { ErrorCodes } from "@omnirelay/core";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import {
  type BusyLog,
  binaryRowAt,
  busyQueueLog,
  filesBeside,
  flipBytes,
  item,
  pageSizeOf,
  rejection,
  tempDb,
} from "./helpers.js";

const accept = { truncateAfterLastGood: true } as const;

/** Opens the repaired log as a queue and proves every number continues above `before`. */
async function expectRestartAbove(path: string, before: BusyLog): Promise<void> {
  await using durable = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1_000_000 } });
  const q = durable.queue;
  expect(q.stats().lastEventSequence).toBeGreaterThanOrEqual(before.lastSequence);
  const { sequenceIds } = await q.enqueue(item("after-repair"));
  expect(sequenceIds[0]).toBeGreaterThan(before.lastSequenceId);
  const grants = await q.lease({ maxItems: 1000 });
  expect(grants.length).toBeGreaterThan(0);
  for (const g of grants) expect(g.ownershipToken.fencingToken).toBeGreaterThan(before.lastFencingToken);
  await q.complete(grants[0]!.ownershipToken);
  const last = q.stats().lastEventSequence;
  await durable.close();
  // And it restarts again: the repaired log is an ordinary one now.
  await using again = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1_000_000 } });
  expect(again.queue.stats().lastEventSequence).toBeGreaterThanOrEqual(last);
}

async function expectRefused(path: string, metadata: Record<string, string>) {
  const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
  expect(err).toMatchObject({ status: "data-loss", code: ErrorCodes.sqlite.corrupt });
  expect(err.metadata).toMatchObject(metadata);
  expect(err.message).toContain("repair");
  // openDurableResourceLeaseQueue (verifyOnOpen 'on-read') refuses the same way: nothing is served from a lost log.
  const err2 = await rejection(openDurableResourceLeaseQueue({ path }));
  expect(err2.code).toBe(ErrorCodes.sqlite.corrupt);
  expect(err2.metadata.reason).toBe(metadata.reason);
  return err;
}

describe("a log truncated to 0 bytes", () => {
  it("is refused (not opened as an empty queue), and repair continues every counter above the record", async () => {
    const path = tempDb();
    const before = await busyQueueLog(path, { items: 120 });
    expect(before).toMatchObject({ pending: expect.any(Number), dead: 12 });
    truncateSync(path, 0);
    const err = await expectRefused(path, {
      reason: "behind_high_water",
      file: "log",
      sequence: "1",
      lastSequence: "0",
      highWaterSequence: String(before.lastSequence),
    });
    expect(err.message).toContain("0 bytes");
    // Refusing did not touch the file: it is still empty, not turned into an empty database.
    expect(statSync(path).size).toBe(0);

    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report).toMatchObject({
      repaired: true,
      reason: "behind_high_water",
      lastGoodSequence: 0,
      lostRange: [1, before.lastSequence],
      resumeSequence: before.lastSequence,
      lastFencingToken: before.lastFencingToken,
      lastSequenceId: before.lastSequenceId,
    });
    expect(report.movedAside).toEqual([`${path}${report.movedAside[0]!.slice(path.length)}`]);
    expect(statSync(report.movedAside[0]!).size).toBe(0);
    await expectRestartAbove(path, before);
  });
});

describe("a missing log beside its high-water record", () => {
  it("is refused, and repair starts an empty log above the record", async () => {
    const path = tempDb();
    const before = await busyQueueLog(path);
    rmSync(path);
    await expectRefused(path, { reason: "missing_log", file: "log", highWaterSequence: String(before.lastSequence) });
    expect(existsSync(path)).toBe(false);
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report).toMatchObject({ repaired: true, reason: "missing_log", lostRange: [1, before.lastSequence] });
    expect(report.movedAside).toEqual([]);
    await expectRestartAbove(path, before);
  });
});

describe("a damaged file header", () => {
  it.each([
    ["magic", 0, 16],
    ["page size", 16, 2],
    ["payload fractions", 21, 3],
  ])("(%s) is refused with the documented code, not SQLITE_NOTADB, and repair works", async (_, offset, count) => {
    const path = tempDb();
    const before = await busyQueueLog(path);
    flipBytes(path, offset, count);
    const damaged = readFileSync(path);
    await expectRefused(path, { reason: "header", file: "log", path });
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report).toMatchObject({ repaired: true, reason: "header", resumeSequence: before.lastSequence });
    expect(readFileSync(report.movedAside[0]!).equals(damaged)).toBe(true);
    await expectRestartAbove(path, before);
  });
});

describe("a truncated file", () => {
  it.each([
    ["cut mid-page", (size: number) => Math.floor(size / 2) + 100],
    ["cut at a page boundary", (size: number, page: number) => Math.floor(size / 2 / page) * page],
    ["cut inside the header", () => 50],
  ])("(%s) is refused with the documented code, not SQLITE_CORRUPT, and repair works", async (_, cut) => {
    const path = tempDb();
    const before = await busyQueueLog(path, { items: 400 });
    truncateSync(path, cut(statSync(path).size, pageSizeOf(path)));
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(err.metadata).toMatchObject({ reason: "truncated", file: "log", path });
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report.repaired).toBe(true);
    expect(report.resumeSequence).toBeGreaterThanOrEqual(before.lastSequence);
    await expectRestartAbove(path, before);
  });
});

describe("a damaged page inside the file", () => {
  it("is refused with the documented code when read (open 'all', and 'on-read' replay), and repair works", async () => {
    const path = tempDb();
    const before = await busyQueueLog(path, { items: 400 });
    const pageSize = pageSizeOf(path);
    const pages = statSync(path).size / pageSize;
    expect(pages).toBeGreaterThan(8);
    // Garbage over a b-tree page in the middle of the file.
    flipBytes(path, Math.floor(pages / 2) * pageSize, pageSize);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(err.metadata.file).toBe("log");
    const replay = await rejection(openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1_000_000 } }));
    expect(replay.code).toBe(ErrorCodes.sqlite.corrupt);
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report.repaired).toBe(true);
    expect(report.resumeSequence).toBe(before.lastSequence);
    await expectRestartAbove(path, before);
  });

  it("read() reports a damaged page under a snapshot as the documented code, never raw SQLITE_CORRUPT", async () => {
    const path = tempDb();
    await busyQueueLog(path, { items: 400 });
    const first = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1_000_000 } });
    expect(first.replicator.saveSnapshot(first.queue.snapshot())).toBe(true);
    await first.close();
    const db = new Database(path, { readonly: true });
    const { s } = db.prepare("SELECT max(sequence) AS s FROM resourcelease_events_snapshots").get() as { s: number };
    db.close();
    expect(s).toBeGreaterThan(100);
    // The page holding a row in the middle of what the snapshot covers: not read at open ('on-read') nor by replay.
    const at = binaryRowAt(readFileSync(path), Math.floor(s / 2));
    expect(at).toBeGreaterThan(0);
    const pageSize = pageSizeOf(path);
    const page = Math.floor(at / pageSize) * pageSize;
    flipBytes(path, page + 8, pageSize - 8);
    await using durable = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1_000_000 } });
    expect(durable.snapshotSequence).toBe(s);
    const err = await rejection(async () => {
      for await (const _ of durable.replicator.read(1)) {
        // drain
      }
    });
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(["sqlite", "checksum", "decode", "gap"]).toContain(err.metadata.reason);
  });
});

describe("a damaged high-water record", () => {
  it.each([
    [
      "a flipped digit",
      (text: string) => text.replace(/"lastSequence":(\d)/, (_, d) => `"lastSequence":${(Number(d) + 1) % 10}`),
    ],
    ["cut short", (text: string) => text.slice(0, 20)],
    ["not a record", () => "hello\n"],
    ["another table's", (text: string) => text.replace("resourcelease_events", "other_events")],
  ])("(%s) is refused with reason high_water_damaged; repair rewrites it from the healthy log", async (_, mangle) => {
    const path = tempDb();
    const before = await busyQueueLog(path);
    const record = `${path}.hwm`;
    const text = readFileSync(record, "utf8");
    writeFileSync(record, mangle(text));
    await expectRefused(path, { reason: "high_water_damaged", file: "high_water", path: record });
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report).toMatchObject({
      repaired: true,
      reason: "high_water_damaged",
      file: "high_water",
      droppedEvents: 0,
      resumeSequence: before.lastSequence,
    });
    expect(report.movedAside).toEqual([expect.stringMatching(/log\.db\.hwm\.damaged-/)]);
    expect(readFileSync(report.movedAside[0]!, "utf8")).toBe(mangle(text));
    expect(readFileSync(record, "utf8").split("\n")[0]).toContain(`"lastSequence":${before.lastSequence}`);
    await expectRestartAbove(path, before);
  });
});

describe("an old backup put in the log's place", () => {
  it("is refused (the events after the backup are lost), and repair continues above the record", async () => {
    const path = tempDb();
    const backup = tempDb("backup.db");
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    await durable.queue.enqueueMany([item(1), item(2)]);
    await durable.replicator.backup(backup);
    await durable.queue.enqueueMany([item(3), item(4), item(5)]);
    const [grant] = await durable.queue.lease();
    const lastFencingToken = grant!.ownershipToken.fencingToken;
    await durable.close();
    copyFileSync(backup, path);
    const err = await expectRefused(path, { reason: "behind_high_water", lastSequence: "2", highWaterSequence: "6" });
    expect(err.metadata.sequence).toBe("3");
    const report = await SqliteResourceLeaseReplicator.repair(path, accept);
    expect(report).toMatchObject({ lastGoodSequence: 2, lostRange: [3, 6], resumeSequence: 6, lastSequenceId: 5 });
    expect(filesBeside(path)).toEqual(
      [
        "log.db",
        report.movedAside[0]!.split("/").at(-1),
        "log.db.hwm",
        `log.db.hwm${report.movedAside[0]!.slice(path.length)}`,
      ].sort(),
    );
    await using again = await openDurableResourceLeaseQueue({ path });
    expect(again.queue.stats().pendingCount).toBe(2);
    expect((await again.queue.enqueue(item(6))).sequenceIds).toEqual([6]);
    const grants = await again.queue.lease({ maxItems: 5 });
    expect(grants.every((g) => g.ownershipToken.fencingToken > lastFencingToken)).toBe(true);
  });
});
