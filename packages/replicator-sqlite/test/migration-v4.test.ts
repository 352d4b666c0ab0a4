import { copyFileSync, readFileSync } from "node:fs";
import { ErrorCodes, ResourceLeaseQueue, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { hashReplicationEvent } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { logMigrations, logTables, migrate, schemaVersion } from "../src/schema.js";
import { item, rejection, tempDb } from "./helpers.js";

// A log written by the package at schema version 4 (test/fixtures/make-v4-log.mjs, run against the build of eab3ce1):
// every event a binary row. Version 5 adds notBefore and priority behind payload flag bits such a row never sets.
const fixture = new URL("./fixtures/v4-log.db", import.meta.url).pathname;
const expected = JSON.parse(readFileSync(new URL("./fixtures/v4-log.expected.json", import.meta.url), "utf8")) as {
  stats: { lastEventSequence: number; lastFencingToken: number };
  snapshot: unknown;
};
const COMPONENT = "eventlog:resourcelease_events";
const base64 = (_key: string, value: unknown) =>
  value instanceof Uint8Array ? Buffer.from(value).toString("base64") : value;
const plain = (value: unknown) => JSON.parse(JSON.stringify(value, base64)) as unknown;

function v4Copy(): string {
  const path = tempDb();
  copyFileSync(fixture, path);
  copyFileSync(`${fixture}.hwm`, `${path}.hwm`);
  return path;
}

function rows(path: string): Array<[number, Buffer]> {
  const db = new Database(path, { readonly: true });
  const out = db.prepare("SELECT sequence, data FROM resourcelease_events ORDER BY sequence").raw().all();
  db.close();
  return out as Array<[number, Buffer]>;
}

describe("a log written at schema version 4", () => {
  it("is migrated to 6 at open without rewriting a row, and replays to the state it was written with", async () => {
    const path = v4Copy();
    const before = rows(path);
    const db = new Database(path, { readonly: true });
    expect(schemaVersion(db, COMPONENT)).toBe(4);
    db.close();
    const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "all" });
    const fromEvents = await ResourceLeaseQueue.rebuild(log.read(1), {}, { activeLeases: "keep" });
    const snapshot = log.latestSnapshot();
    expect(snapshot?.lastEventSequence).toBe(48);
    const fromSnapshot = await ResourceLeaseQueue.rebuild(
      log.read(49),
      {},
      { activeLeases: "keep", ...(snapshot ? { snapshot } : {}) },
    );
    // Written before the hash chain: the rebuilt queue hashes the last event it replayed, for the next to link to.
    let last: ResourceLeaseReplicationEvent | undefined;
    for await (const e of log.read(1)) last = e;
    const chained = { ...(expected.snapshot as object), lastEventHash: hashReplicationEvent(last!) };
    expect(plain(fromEvents.snapshot())).toEqual(chained);
    expect(plain(fromSnapshot.snapshot())).toEqual(chained);
    await log.close();
    const after = new Database(path, { readonly: true });
    expect(schemaVersion(after, COMPONENT)).toBe(6);
    after.close();
    expect(rows(path)).toEqual(before);
  });

  it("continues with delayed and prioritised items that survive a restart and come due after it", async () => {
    const path = v4Copy();
    const clock = new FakeClock(Date.UTC(2026, 11, 1));
    const queueOptions = { capacity: 10_000, clock };
    const first = await openDurableResourceLeaseQueue({ path, queueOptions });
    const t0 = clock.now();
    await first.queue.enqueueMany([
      item("late", { notBefore: t0 + 60_000, priority: 5 }),
      item("soon", { delayMs: 1_000 }),
      item("urgent", { priority: 2 ** 31 - 1 }),
    ]);
    expect(first.queue.stats().delayedCount).toBe(3); // two new, one retry backoff from the fixture
    await first.close();

    // Restart before anything is due: the delayed items wait, the urgent one leads the old pending ones.
    const second = await openDurableResourceLeaseQueue({ path, queueOptions });
    expect(second.queue.stats().delayedCount).toBe(3);
    const [urgent] = await second.queue.lease();
    expect(urgent!.payload).toMatchObject({ resourceId: "urgent", priority: 2 ** 31 - 1 });
    clock.advance(999);
    const notYet = (await second.queue.lease({ maxItems: 1000 })).map((g) => g.payload.resourceId);
    expect(notYet).not.toContain("soon");
    clock.advance(1);
    const [soon] = await second.queue.lease();
    expect(soon!.payload).toMatchObject({ resourceId: "soon", notBefore: t0 + 1_000 });
    expect(soon!.payload).not.toHaveProperty("delayMs");
    const live = plain(second.queue.snapshot());
    await second.close();

    // A third open rebuilds the same state (the grants above expire at the restart, as for any lease).
    const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "all" });
    const rebuilt = await ResourceLeaseQueue.rebuild(log.read(1), { clock }, { activeLeases: "keep" });
    expect(plain({ ...rebuilt.snapshot(), requestIds: [] })).toEqual({ ...(live as object), requestIds: [] });
    await log.close();
    clock.advance(59_000);
    const third = await openDurableResourceLeaseQueue({ path, queueOptions });
    const late = (await third.queue.lease({ maxItems: 1000 })).find((g) => g.payload.resourceId === "late");
    expect(late?.payload).toMatchObject({ notBefore: t0 + 60_000, priority: 5 });
    await third.close();
  });

  it("is refused by a release that knows only version 4 once it is at version 6", async () => {
    const path = v4Copy();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.close();
    const db = new Database(path);
    const older = logMigrations(logTables("resourcelease_events")).filter((m) => m.version <= 4);
    const err = await rejection(() => migrate(db, COMPONENT, older));
    db.close();
    expect(err).toMatchObject({ code: ErrorCodes.sqlite.schemaTooNew, metadata: { version: "6", supported: "4" } });
  });
});
