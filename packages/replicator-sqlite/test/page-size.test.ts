import { readFileSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { scanNumbers } from "../src/page-scan.js";
import { item, pageSizeOf, rejection, tempDb } from "./helpers.js";

async function fill(path: string, items: number, pageSizeBytes?: number): Promise<void> {
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: 0,
    queueOptions: { capacity: 100_000 },
    ...(pageSizeBytes !== undefined ? { replicatorOptions: { pageSizeBytes } } : {}),
  });
  for (let i = 0; i < items; i++) await durable.queue.enqueue(item(i));
  await durable.close();
}

/** A log of 30 enqueues at `pageSizeBytes`, and its WAL as it was before the log closed (as kill -9 leaves it). */
async function thirtyEnqueues(pageSizeBytes: number): Promise<{ path: string; wal: Buffer }> {
  const path = tempDb();
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: 0,
    queueOptions: { capacity: 100_000 },
    replicatorOptions: { pageSizeBytes, highWaterIntervalMs: 3_600_000 },
  });
  for (let i = 0; i < 30; i++) await durable.queue.enqueue(item(i));
  const wal = readFileSync(`${path}-wal`);
  await durable.close();
  return { path, wal };
}

describe("the log's page size", () => {
  it("is 16 KiB for a new file, or what pageSizeBytes says", async () => {
    const byDefault = tempDb();
    await fill(byDefault, 3);
    expect(pageSizeOf(byDefault)).toBe(16384);
    const small = tempDb();
    await fill(small, 3, 4096);
    expect(pageSizeOf(small)).toBe(4096);
  });

  it("of an existing file is kept: a 4 KiB log reopened with the default stays 4 KiB and goes on", async () => {
    const path = tempDb();
    await fill(path, 5, 4096);
    await using durable = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 100 } });
    expect(durable.queue.stats().pendingCount).toBe(5);
    expect((await durable.queue.enqueue(item("next"))).sequenceIds).toEqual([6]);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("page_size", { simple: true })).toBe(4096);
    } finally {
      db.close();
    }
  });

  it.each([256, 3000, 131072, 0, -4096, 1.5, "16384"])("rejects pageSizeBytes %j with the options code", async (n) => {
    const err = await rejection(
      SqliteResourceLeaseReplicator.open({ path: tempDb(), pageSizeBytes: n as unknown as number }),
    );
    expect(err.code).toBe("resourcelease.options.invalid");
    expect(err.metadata.option).toBe("pageSizeBytes");
  });

  it.each([4096, 16384, 65536])(
    "repair's page scan finds the WAL's numbers when its header is damaged (%i-byte pages)",
    async (pageSizeBytes) => {
      // The WAL as a kill -9 now would leave it, its header's magic and page size overwritten.
      const { path, wal } = await thirtyEnqueues(pageSizeBytes);
      wal.fill(0xa5, 0, 12);
      writeFileSync(`${path}-wal`, wal);
      expect(scanNumbers(`${path}-wal`).lastSequence).toBe(30);
    },
  );

  it.each([4096, 16384, 65536])(
    "with a damaged header and a single frame, the scan takes the page size from the database file (%i-byte pages)",
    async (pageSizeBytes) => {
      const { path, wal } = await thirtyEnqueues(pageSizeBytes);
      // One frame, too few for the frames to say their size: the header and the first frame holding events. What it
      // holds, read with its header intact:
      const frame = 24 + pageSizeBytes;
      let one = Buffer.alloc(0);
      let intact = scanNumbers(`${path}-wal`);
      for (let at = 32; at + frame <= wal.length; at += frame) {
        one = Buffer.concat([wal.subarray(0, 32), wal.subarray(at, at + frame)]);
        writeFileSync(`${path}-wal`, one);
        intact = scanNumbers(`${path}-wal`);
        if (intact.lastSequence > 0) break;
      }
      expect(intact.lastSequence).toBeGreaterThan(0);
      one.fill(0xa5, 0, 12);
      writeFileSync(`${path}-wal`, one);
      expect(pageSizeOf(path)).toBe(pageSizeBytes);
      expect(scanNumbers(`${path}-wal`)).toEqual(intact);
    },
  );
});
