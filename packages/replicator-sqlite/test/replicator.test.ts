import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import {
  ErrorCodes,
  type ResourceLeaseEventType,
  ResourceLeaseQueue,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SqliteResourceLeaseReplicator } from "../src/index.js";
import { item, rejection, tempDb } from "./helpers.js";

function ev(sequenceNumber: number, eventType: ResourceLeaseEventType = "Heartbeat"): ResourceLeaseReplicationEvent {
  return {
    sequenceNumber,
    eventType,
    timestamp: 1_700_000_000_000 + sequenceNumber,
    metadata: { n: String(sequenceNumber) },
  };
}

async function collect(iterable: AsyncIterable<ResourceLeaseReplicationEvent>): Promise<number[]> {
  const out: number[] = [];
  for await (const e of iterable) out.push(e.sequenceNumber);
  return out;
}

describe("SqliteResourceLeaseReplicator: options", () => {
  it.each(['x"; DROP TABLE y; --', "1abc", "a-b", "", "a".repeat(64)])("rejects the table name %j", async (table) => {
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path: tempDb(), table }));
    expect(err.status).toBe("invalid-argument");
    expect(err.code).toBe("resourcelease.options.invalid");
    expect(err.metadata.option).toBe("table");
  });

  it("rejects bad numbers and modes with the option named", async () => {
    const path = tempDb();
    expect((await rejection(SqliteResourceLeaseReplicator.open({ path, maxBatchEvents: 0 }))).metadata.option).toBe(
      "maxBatchEvents",
    );
    const mode = "fast" as unknown as "sync";
    expect((await rejection(SqliteResourceLeaseReplicator.open({ path, durability: mode }))).metadata.option).toBe(
      "durability",
    );
    expect((await rejection(SqliteResourceLeaseReplicator.open({ path: " " }))).metadata.option).toBe("path");
  });
});

// Publish/read round trips, ranges, ordering, all-or-nothing batches, gaps, cancellation and reopen: core's event-log
// conformance suite (conformance.test.ts). Here: what only this log has.
describe("SqliteResourceLeaseReplicator: the log", () => {
  it("still verifies rows an earlier version stored with a SHA-256, and refuses one that does not match", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish([ev(1, "Enqueue"), ev(2)]);
    await log.close();
    // Rows as those versions stored them: the event's JSON text and its SHA-256.
    const db = new Database(path);
    const sha = (json: string) => createHash("sha256").update(json, "utf8").digest("hex");
    for (const event of [ev(1, "Enqueue"), ev(2)]) {
      const json = JSON.stringify(encodeReplicationEvent(event));
      db.prepare("UPDATE resourcelease_events SET data = ?, checksum = ? WHERE sequence = ?").run(
        json,
        sha(json),
        event.sequenceNumber,
      );
    }
    db.close();
    const again = await SqliteResourceLeaseReplicator.open({ path });
    expect(await collect(again.read(1))).toEqual([1, 2]);
    await again.close();

    const tamper = new Database(path);
    tamper.prepare("UPDATE resourcelease_events SET checksum = ? WHERE sequence = 2").run(sha("{}"));
    tamper.close();
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path }));
    expect(err.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(err.metadata).toMatchObject({ sequence: "2", reason: "checksum" });
  });

  it("stores rows with type, timestamp, the event's binary form and its CRC-32 in the table it is given", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path, table: "my_events" });
    await log.publish([ev(1, "Enqueue"), ev(2)]);
    await log.publish([ev(3, "Completed")]);
    await log.close();

    const db = new Database(path, { readonly: true });
    const rows = db.prepare("SELECT sequence, event_type, timestamp, data, checksum FROM my_events").all() as Array<{
      sequence: number;
      event_type: number;
      timestamp: number;
      data: Buffer;
      checksum: string;
    }>;
    db.close();
    expect(rows.map((r) => [r.sequence, r.event_type, r.timestamp])).toEqual([
      [1, 1, 1_700_000_000_001],
      [2, 3, 1_700_000_000_002],
      [3, 4, 1_700_000_000_003],
    ]);
    for (const r of rows) {
      expect(Buffer.isBuffer(r.data)).toBe(true);
      expect(r.checksum).toBe(crc32(r.data).toString(16).padStart(8, "0"));
    }

    const again = await SqliteResourceLeaseReplicator.open({ path, table: "my_events" });
    expect(await collect(again.read(1))).toEqual([1, 2, 3]);
    await again.close();
  });

  it("rejects a gap or a repeat, and every publish after it, so a gap is never committed", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish([ev(1), ev(2)]);
    const gap = await rejection(log.publish([ev(4)]));
    expect(gap).toMatchObject({ status: "failed-precondition", code: ErrorCodes.sqlite.sequenceGap });
    expect(gap.metadata).toMatchObject({ sequence: "4", expected: "3" });
    const after = await rejection(log.publish([ev(3)]));
    expect(after.code).toBe(ErrorCodes.sqlite.writeFailed);
    expect(log.stats().faulted).toBe(true);
    await log.close();
    const reopened = await SqliteResourceLeaseReplicator.open({ path });
    expect(await reopened.lastSequence()).toBe(2);
    await reopened.publish([ev(3)]);
    expect(await collect(reopened.read(0))).toEqual([1, 2, 3]);
    await reopened.close();
  });

  it("a failed write rejects its whole batch, commits none of it, and faults the log", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish([ev(1)]);
    await log.close();
    const raw = new Database(path);
    raw.exec(
      "CREATE TRIGGER fail_3 BEFORE INSERT ON resourcelease_events WHEN NEW.sequence = 3 BEGIN SELECT RAISE(ABORT, 'disk is full'); END",
    );
    raw.close();
    const broken = await SqliteResourceLeaseReplicator.open({ path });
    const results = await Promise.allSettled([broken.publish([ev(2)]), broken.publish([ev(3)])]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason.code).toBe(ErrorCodes.sqlite.writeFailed);
    }
    expect((await rejection(broken.publish([ev(4)]))).code).toBe(ErrorCodes.sqlite.writeFailed);
    expect(await broken.lastSequence()).toBe(1);
    await broken.close();
    const reopened = await SqliteResourceLeaseReplicator.open({ path });
    expect(await collect(reopened.read(1))).toEqual([1]);
    await reopened.close();
  });

  it("a queue on a failing log faults, and a rebuild from the log never sees the failed mutation", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const queue = new ResourceLeaseQueue({ replicator: log });
    await queue.enqueue(item(1));
    await log.close();
    const raw = new Database(path);
    raw.exec(
      "CREATE TRIGGER f BEFORE INSERT ON resourcelease_events WHEN NEW.sequence = 2 BEGIN SELECT RAISE(ABORT, 'io'); END",
    );
    raw.close();
    const log2 = await SqliteResourceLeaseReplicator.open({ path });
    const q2 = await ResourceLeaseQueue.rebuild(log2.read(1), { replicator: log2 });
    const err = await rejection(q2.enqueue(item(2)));
    expect(err.code).toBe("resourcelease.replication.failed");
    expect((await rejection(q2.lease())).code).toBe("resourcelease.replication.failed");
    await q2.close();
    await log2.close();
    const raw2 = new Database(path);
    raw2.exec("DROP TRIGGER f");
    raw2.close();
    const log3 = await SqliteResourceLeaseReplicator.open({ path });
    const q3 = await ResourceLeaseQueue.rebuild(log3.read(1), { replicator: log3 });
    expect(q3.stats()).toMatchObject({ pendingCount: 1, lastEventSequence: 1 });
    await q3.close();
    await log3.close();
    await queue.close();
  });

  it("refuses a second process (or connection) on the same log", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, busyTimeoutMs: 20 }));
    expect(err).toMatchObject({ status: "unavailable", code: ErrorCodes.sqlite.locked });
    await log.close();
    const next = await SqliteResourceLeaseReplicator.open({ path });
    await next.close();
  });

  it("rejects publishes after close and commits what was buffered", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path, durability: "async", asyncFlushIntervalMs: 60_000 });
    await log.publish([ev(1)]);
    expect(log.stats().uncommittedEvents).toBe(1);
    await log.close();
    expect((await rejection(log.publish([ev(2)]))).code).toBe(ErrorCodes.sqlite.closed);
    const again = await SqliteResourceLeaseReplicator.open({ path });
    expect(await again.lastSequence()).toBe(1);
    await again.close();
  });
});

describe("SqliteResourceLeaseReplicator: durability modes", () => {
  it("'batched' commits every publish of one tick in one transaction and resolves each after the commit", async () => {
    const log = await SqliteResourceLeaseReplicator.open({ path: tempDb() });
    const seenAtResolve: number[] = [];
    const publishes = [1, 2, 3, 4, 5].map((n) =>
      log.publish([ev(n)]).then(() => seenAtResolve.push(log.stats().lastCommittedSequence)),
    );
    expect(log.stats()).toMatchObject({ lastCommittedSequence: 0, lastAcceptedSequence: 5, commits: 0 });
    await Promise.all(publishes);
    expect(seenAtResolve).toEqual([5, 5, 5, 5, 5]);
    expect(log.stats().commits).toBe(1);
    await log.close();
  });

  it("'batched' starts a new transaction at maxBatchEvents, never splitting a publish", async () => {
    const log = await SqliteResourceLeaseReplicator.open({ path: tempDb(), maxBatchEvents: 2 });
    await Promise.all([log.publish([ev(1)]), log.publish([ev(2), ev(3), ev(4)]), log.publish([ev(5)])]);
    expect(log.stats()).toMatchObject({ commits: 2, committedEvents: 5 });
    await log.close();
  });

  it("'process-safe' opens with synchronous=NORMAL, 'batched' with FULL (the log on the calling thread)", async () => {
    const synchronousOf = (log: SqliteResourceLeaseReplicator) =>
      (log as any).store.db.pragma("synchronous", { simple: true }) as number;
    const batched = await SqliteResourceLeaseReplicator.open({ path: tempDb(), writerThread: false });
    expect(synchronousOf(batched)).toBe(2); // FULL
    await batched.close();
    const log = await SqliteResourceLeaseReplicator.open({
      path: tempDb(),
      durability: "process-safe",
      writerThread: false,
    });
    expect(synchronousOf(log)).toBe(1); // NORMAL: written to the WAL at commit, synced at checkpoints
    await log.close();
  });

  describe.each([true, false])("writerThread %s", (writerThread) => {
    it("'process-safe' group-commits and resolves after the commit like 'batched'", async () => {
      const log = await SqliteResourceLeaseReplicator.open({
        path: tempDb(),
        durability: "process-safe",
        writerThread,
      });
      expect(log.durability).toBe("process-safe");
      expect(log.writerThread).toBe(writerThread);
      const seenAtResolve: number[] = [];
      const publishes = [1, 2, 3].map((n) =>
        log.publish([ev(n)]).then(() => seenAtResolve.push(log.stats().lastCommittedSequence)),
      );
      expect(log.stats()).toMatchObject({ lastCommittedSequence: 0, lastAcceptedSequence: 3 });
      await Promise.all(publishes);
      expect(seenAtResolve).toEqual([3, 3, 3]);
      expect(log.stats().commits).toBe(1);
      await log.close();
    });

    it("'sync' commits each publish in its own transaction before it resolves", async () => {
      const log = await SqliteResourceLeaseReplicator.open({ path: tempDb(), durability: "sync", writerThread });
      const seenAtResolve: number[] = [];
      const publishes = [1, 2, 3].map((n) =>
        log.publish([ev(n)]).then(() => seenAtResolve.push(log.stats().lastCommittedSequence)),
      );
      // On the calling thread the commit is done before publish returns; the writer thread reports it later.
      expect(log.stats().lastCommittedSequence).toBe(writerThread ? 0 : 3);
      await Promise.all(publishes);
      // Each resolved once its own commit was done (later ones may have been committed too by then).
      expect(seenAtResolve.every((seen, i) => seen >= i + 1)).toBe(true);
      expect(log.stats().commits).toBe(3);
      await log.close();
    });

    it("'async' resolves before the commit and commits after asyncFlushIntervalMs (fake clock)", async () => {
      const clock = new FakeClock();
      const log = await SqliteResourceLeaseReplicator.open({
        path: tempDb(),
        durability: "async",
        asyncFlushIntervalMs: 50,
        clock,
        writerThread,
      });
      await log.publish([ev(1)]);
      await log.publish([ev(2)]);
      expect(log.stats()).toMatchObject({ lastAcceptedSequence: 2, lastCommittedSequence: 0, uncommittedEvents: 2 });
      clock.advance(49);
      expect(log.stats().lastCommittedSequence).toBe(0);
      const committed = new Promise<number>((resolve) => log.onCommit(resolve));
      clock.advance(1);
      expect(await committed).toBe(2);
      expect(log.stats()).toMatchObject({ lastCommittedSequence: 2, commits: 1 });
      await log.close();
    });
  });

  it("'async' commits shortly after in real time", async () => {
    const log = await SqliteResourceLeaseReplicator.open({
      path: tempDb(),
      durability: "async",
      asyncFlushIntervalMs: 20,
    });
    await log.publish([ev(1)]);
    expect(log.stats().lastCommittedSequence).toBe(0);
    const committed = await new Promise<number>((resolve) => log.onCommit(resolve));
    expect(committed).toBe(1);
    await log.close();
  });
});
