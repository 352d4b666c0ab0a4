import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { busyQueueLog, filesBeside, item, rejection, tempDb, tempDir } from "./helpers.js";

function record(path: string, name = `${path}.hwm`) {
  const [body, crc, end] = readFileSync(name, "utf8").split("\n");
  expect(crc).toMatch(/^crc32 [0-9a-f]{8}$/);
  expect(end).toBe("");
  return JSON.parse(body!) as Record<string, unknown>;
}

function ev(sequenceNumber: number): ResourceLeaseReplicationEvent {
  return { sequenceNumber, eventType: "Heartbeat", timestamp: 1_700_000_000_000, metadata: {} };
}

describe("the high-water record", () => {
  it("is written at open, within highWaterIntervalMs of a commit (not per commit), and at close", async () => {
    const path = tempDb();
    const clock = new FakeClock();
    const log = await SqliteResourceLeaseReplicator.open({ path, clock, highWaterIntervalMs: 1000 });
    expect(record(path)).toMatchObject({
      format: "omnirelay.sqlite.high-water",
      version: 1,
      table: "resourcelease_events",
      lastSequence: 0,
    });
    for (let i = 1; i <= 50; i++) await log.publish([ev(i)]);
    expect(log.stats().commits).toBe(50);
    // 50 commits, no interval passed: the record still says 0 and one write is pending on the timer.
    expect(record(path).lastSequence).toBe(0);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1000);
    await expect.poll(() => log.stats().highWaterSequence).toBe(50);
    expect(record(path).lastSequence).toBe(50);
    await log.publish([ev(51)]);
    await log.close();
    expect(record(path).lastSequence).toBe(51);
    expect(filesBeside(path)).toEqual(["log.db", "log.db.hwm"]); // the temporary file was renamed over it
  });

  it("with highWaterIntervalMs 0 is current after every commit", async () => {
    const path = tempDb();
    await using log = await SqliteResourceLeaseReplicator.open({ path, highWaterIntervalMs: 0 });
    for (let i = 1; i <= 5; i++) {
      await log.publish([ev(i)]);
      await expect.poll(() => record(path).lastSequence).toBe(i);
    }
  });

  it.each(["sync", "batched", "process-safe", "async"] as const)(
    "holds the highest fencing token and item id of a queue's log (%s)",
    async (durability) => {
      const path = tempDb();
      const before = await busyQueueLog(path, { replicatorOptions: { durability } });
      expect(before.lastFencingToken).toBeGreaterThan(0);
      expect(record(path)).toMatchObject({
        lastSequence: before.lastSequence,
        lastFencingToken: before.lastFencingToken,
        lastSequenceId: before.lastSequenceId,
      });
    },
  );

  it("is created for a log written before records existed, with counters read from its rows", async () => {
    const path = tempDb();
    const before = await busyQueueLog(path);
    rmSync(`${path}.hwm`);
    await using log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read" });
    expect(record(path)).toMatchObject({
      lastSequence: before.lastSequence,
      lastFencingToken: before.lastFencingToken,
      lastSequenceId: before.lastSequenceId,
    });
    expect(log.stats().highWaterSequence).toBe(before.lastSequence);
  });

  it("never claims more than the log: a crash before the rename leaves the old record, and a stray temp file is harmless", async () => {
    const path = tempDb();
    await busyQueueLog(path);
    writeFileSync(`${path}.hwm.tmp`, "half a rec");
    writeFileSync(`${path}.hwm.1234.0123456789ab.tmp`, "half a rec");
    await using log = await SqliteResourceLeaseReplicator.open({ path });
    expect(await log.lastSequence()).toBe(record(path).lastSequence);
  });

  it("is written through a temporary file of its own: a directory at another writer's temporary name is no obstacle", async () => {
    const path = tempDb();
    mkdirSync(`${path}.hwm.tmp`); // the fixed name every write used to share
    const log = await SqliteResourceLeaseReplicator.open({ path, writerThread: false, highWaterIntervalMs: 0 });
    await log.publish([ev(1)]);
    await log.close();
    expect(record(path).lastSequence).toBe(1);
    expect(filesBeside(path).filter((f) => f.endsWith(".tmp"))).toEqual(["log.db.hwm.tmp"]);
  });

  it("that cannot be written makes open fail with write_failed, not a raw file-system error", async () => {
    // The log's name fits, and its record's, but no temporary name beside the record does (ENAMETOOLONG).
    const path = join(tempDir(), "l".repeat(245));
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err).toMatchObject({ status: "unavailable", code: "resourcelease.sqlite.write_failed" });
    expect(err.metadata.path).toBe(`${path}.hwm`);
    expect(filesBeside(path).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("refuses a record that checksums but holds a number past 2^53 (a rewritten file), as damaged", async () => {
    const path = tempDb();
    await busyQueueLog(path);
    const body = readFileSync(`${path}.hwm`, "utf8")
      .split("\n")[0]!
      .replace(/"lastSequence":\d+/, '"lastSequence":9007199254740993');
    writeFileSync(`${path}.hwm`, `${body}\ncrc32 ${crc32(body).toString(16).padStart(8, "0")}\n`);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err.metadata).toMatchObject({ reason: "high_water_damaged", file: "high_water" });
  });

  it("is per table", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path, table: "my_events" });
    await log.publish([ev(1), ev(2)]);
    await log.close();
    expect(record(path, `${path}.my_events.hwm`)).toMatchObject({ table: "my_events", lastSequence: 2 });
    expect(existsSync(`${path}.hwm`)).toBe(false);
  });

  it.each([-1, 1.5, 2 ** 31, Number.NaN])("rejects highWaterIntervalMs %s", async (highWaterIntervalMs) => {
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path: tempDb(), highWaterIntervalMs }));
    expect(err.metadata.option).toBe("highWaterIntervalMs");
  });

  it("a queue restarted after many kill-free restarts keeps its record in step", async () => {
    const path = tempDb();
    for (let round = 0; round < 3; round++) {
      const durable = await openDurableResourceLeaseQueue({ path });
      await durable.queue.enqueue(item(round));
      const last = durable.queue.stats().lastEventSequence;
      await durable.close();
      expect(record(path).lastSequence).toBe(last);
    }
  });
});
