import { readFileSync } from "node:fs";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import {
  isCorruptLogError,
  openDurableResourceLeaseQueue,
  SCHEMA_VERSION_TABLE,
  SqliteResourceLeaseReplicator,
} from "../src/index.js";
import { checksumOf } from "../src/integrity.js";
import { logMigrations, logTables, migrate, schemaVersion } from "../src/schema.js";
import { busyQueueLog, filesBeside, item, rejection, tempDb } from "./helpers.js";

function ev(sequenceNumber: number): ResourceLeaseReplicationEvent {
  return { sequenceNumber, eventType: "Heartbeat", timestamp: 1_700_000_000_000, metadata: {} };
}

async function logWith(count: number): Promise<string> {
  const path = tempDb();
  const log = await SqliteResourceLeaseReplicator.open({ path });
  await log.publish(Array.from({ length: count }, (_, i) => ev(i + 1)));
  await log.close();
  return path;
}

/** Changes the stored data of event 4 with `change`; with `recomputeChecksum` only decoding can catch it. */
function damageRow4(change: (data: Buffer) => Buffer, recomputeChecksum: boolean) {
  return (db: Database.Database) => {
    const { data } = db.prepare("SELECT data FROM resourcelease_events WHERE sequence = 4").get() as { data: Buffer };
    const damaged = change(data);
    db.prepare("UPDATE resourcelease_events SET data = ? WHERE sequence = 4").run(damaged);
    if (recomputeChecksum) {
      db.prepare("UPDATE resourcelease_events SET checksum = ? WHERE sequence = 4").run(checksumOf(damaged));
    }
  };
}

function tamper(path: string, sql: string | ((db: Database.Database) => void)): void {
  const db = new Database(path);
  if (typeof sql === "string") db.exec(sql);
  else sql(db);
  db.close();
}

describe("corrupt logs", () => {
  it.each([
    // One flipped byte in the middle of the stored bytes.
    [
      "checksum",
      damageRow4((d) => Buffer.concat([d.subarray(0, 40), Buffer.from([d[40]! ^ 1]), d.subarray(41)]), false),
    ],
    // Cut short, its checksum recomputed.
    ["decode", damageRow4((d) => d.subarray(0, 40), true)],
    ["gap", "DELETE FROM resourcelease_events WHERE sequence = 4"],
  ])(
    "opening fails naming the sequence (%s); repair keeps 1..3 and continues above the lost ones",
    async (reason, sql) => {
      const path = tempDb();
      const before = await busyQueueLog(path, { items: 20 });
      tamper(path, sql);
      const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
      expect(isCorruptLogError(err)).toBe(true);
      expect(err.status).toBe("data-loss");
      expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
      expect(err.metadata).toMatchObject({ sequence: "4", reason, file: "log" });
      expect(err.message).toContain("sequence 4");
      const damaged = readFileSync(path);

      const report = await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
      expect(report).toMatchObject({
        repaired: true,
        reason,
        lastGoodSequence: 3,
        firstBadSequence: 4,
        lostRange: [4, before.lastSequence],
        resumeSequence: before.lastSequence,
        lastFencingToken: before.lastFencingToken,
        lastSequenceId: before.lastSequenceId,
      });
      expect(report.droppedEvents).toBe(reason === "gap" ? before.lastSequence - 4 : before.lastSequence - 3);
      // The damaged file is moved aside byte for byte, never deleted.
      expect(report.movedAside[0]).toMatch(/log\.db\.damaged-\d{8}T\d{6}Z$/);
      expect(readFileSync(report.movedAside[0]!).equals(damaged)).toBe(true);

      // The repaired log holds the state of 1..3 (three pending items) numbered at the old last sequence.
      await using again = await openDurableResourceLeaseQueue({ path, queueOptions: { capacity: 1000 } });
      expect(again.queue.stats()).toMatchObject({ pendingCount: 3, lastEventSequence: before.lastSequence });
      const { sequenceIds } = await again.queue.enqueue(item("after"));
      expect(sequenceIds[0]).toBe(before.lastSequenceId + 1);
      const [grant] = await again.queue.lease();
      expect(grant!.ownershipToken.fencingToken).toBe(before.lastFencingToken + 1);
    },
  );

  it("repair leaves a healthy log alone and demands the explicit flag", async () => {
    const path = await logWith(3);
    expect(await SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true })).toEqual({
      repaired: false,
      lastGoodSequence: 3,
      droppedEvents: 0,
      droppedSnapshots: 0,
      resumeSequence: 3,
      lastFencingToken: 0,
      lastSequenceId: 0,
      movedAside: [],
    });
    expect(filesBeside(path)).toEqual(["log.db", "log.db.hwm"]);
    const flag = {} as { truncateAfterLastGood: true };
    expect((await rejection(SqliteResourceLeaseReplicator.repair(path, flag))).metadata.option).toBe(
      "truncateAfterLastGood",
    );
  });

  it("repair names the path when its directory does not exist", async () => {
    const err = await rejection(
      SqliteResourceLeaseReplicator.repair("/nonexistent-omnirelay-dir/log.db", { truncateAfterLastGood: true }),
    );
    expect(err.metadata.option).toBe("path");
  });

  it("repair refuses to touch a log another connection holds open", async () => {
    const path = await logWith(3);
    await using log = await SqliteResourceLeaseReplicator.open({ path });
    const err = await rejection(SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true }));
    expect(err.code).toBe(ErrorCodes.sqlite.locked);
    expect(await log.lastSequence()).toBe(3);
  });

  it("'tail' verification without a snapshot still checks every row", async () => {
    const path = await logWith(5);
    tamper(path, "UPDATE resourcelease_events SET checksum = 'x' WHERE sequence = 5");
    expect(
      (await rejection(SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "tail" }))).metadata.sequence,
    ).toBe("5");
  });
});

describe("schema versions and migrations", () => {
  it("migrates a version-1 log forward, keeping its events", async () => {
    const path = tempDb();
    const db = new Database(path);
    const tables = logTables("resourcelease_events");
    // The migrations an older release shipped: only version 1.
    const olderRelease = logMigrations(tables).filter((m) => m.version <= 1);
    migrate(db, "eventlog:resourcelease_events", olderRelease);
    expect(schemaVersion(db, "eventlog:resourcelease_events")).toBe(1);
    db.close();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish([ev(1)]);
    expect(log.latestSnapshot()).toBeUndefined();
    await log.close();
    const check = new Database(path, { readonly: true });
    expect(schemaVersion(check, "eventlog:resourcelease_events")).toBe(6);
    const rows = check.prepare(`SELECT component, version FROM ${SCHEMA_VERSION_TABLE}`).all();
    check.close();
    expect(rows).toEqual([{ component: "eventlog:resourcelease_events", version: 6 }]);
  });

  it("refuses a file written by a newer version", async () => {
    const path = await logWith(1);
    tamper(path, `UPDATE ${SCHEMA_VERSION_TABLE} SET version = 99`);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err).toMatchObject({ status: "failed-precondition", code: ErrorCodes.sqlite.schemaTooNew });
    expect(err.metadata).toMatchObject({ version: "99", supported: "6" });
  });
});
