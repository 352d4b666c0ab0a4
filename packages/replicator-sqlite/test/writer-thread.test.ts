import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ErrorCodes,
  type ResourceLeaseEventType,
  ResourceLeaseQueue,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { checksumOf } from "../src/integrity.js";
import { built } from "./drill-helpers.js";
import { eventsOf, item, rejection, tempDb, tempDir } from "./helpers.js";

function ev(sequenceNumber: number, eventType: ResourceLeaseEventType = "Heartbeat"): ResourceLeaseReplicationEvent {
  return {
    sequenceNumber,
    eventType,
    timestamp: 1_700_000_000_000 + sequenceNumber,
    metadata: { n: `${sequenceNumber}` },
  };
}

/** Runs `body` (ES module text importing the built package as `lib`) in a child process; its exit code and output. */
function runChild(body: string): Promise<{ code: number | null; out: string; ms: number }> {
  const file = join(tempDir(), "child.mjs");
  writeFileSync(file, `import * as lib from ${JSON.stringify(built)};\n${body}\n`);
  const started = Date.now();
  const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, out, ms: Date.now() - started });
    }),
  );
}

describe("the log's writer thread", () => {
  it("is the default, and close() ends it: a process that writes, reads, snapshots, backs up and closes exits by itself", async () => {
    expect(existsSync(built), "build the package first (pnpm build): the child runs dist/index.js").toBe(true);
    const dir = tempDir();
    const result = await runChild(`
      const durable = await lib.openDurableResourceLeaseQueue({ path: ${JSON.stringify(join(dir, "a.db"))}, snapshotEveryEvents: 0 });
      for (let i = 0; i < 50; i++) await durable.queue.enqueue({ resourceType: "t", resourceId: String(i), partitionKey: "p", payloadEncoding: "json", body: new Uint8Array([i]) });
      const log = durable.replicator;
      if (!log.writerThread) throw new Error("not on the writer thread");
      if (!log.saveSnapshot(durable.queue.snapshot())) throw new Error("snapshot not stored");
      await log.backup(${JSON.stringify(join(dir, "copy.db"))});
      let n = 0;
      for await (const e of log.read(1)) n++;
      await durable.close();
      console.log("closed", n, log.stats().lastSnapshotSequence);
      // No process.exit: the process ends only if nothing (the thread, a port, a timer) is left holding it.
    `);
    expect(result.out).toContain("closed 50 50");
    expect(result.code).toBe(0);
    // The copy opens on its own and holds the snapshot.
    const copy = await SqliteResourceLeaseReplicator.open({ path: join(dir, "copy.db") });
    expect(copy.latestSnapshot()?.lastEventSequence).toBe(50);
    await copy.close();
  });

  it("does not hold the process while idle: a process that forgets close() still exits, its commits kept", async () => {
    const path = join(tempDir(), "b.db");
    const result = await runChild(`
      const log = await lib.SqliteResourceLeaseReplicator.open({ path: ${JSON.stringify(path)} });
      await log.publish([{ sequenceNumber: 1, eventType: "Heartbeat", timestamp: 1, metadata: {} }]);
      console.log("published");
    `);
    expect(result.out).toContain("published");
    expect(result.code).toBe(0);
    const log = await SqliteResourceLeaseReplicator.open({ path });
    expect((await eventsOf(log)).map((e) => e.sequenceNumber)).toEqual([1]);
    await log.close();
  });

  it("ends the thread at close in this process too, and refuses calls afterwards as closed", async () => {
    const log = await SqliteResourceLeaseReplicator.open({ path: tempDb() });
    const worker = (log as unknown as { store: { worker: { threadId: number } } }).store.worker;
    expect(worker.threadId).toBeGreaterThan(0);
    await log.publish([ev(1)]);
    await Promise.all([log.close(), log.close()]);
    expect(worker.threadId).toBe(-1); // exited
    expect((await rejection(log.publish([ev(2)]))).code).toBe(ErrorCodes.sqlite.closed);
    await expect(log.backup(join(tempDir(), "x.db"))).rejects.toMatchObject({ code: ErrorCodes.sqlite.closed });
  });

  it("resolves the transactions committed before a failing one, rejects the rest as write_failed, and faults", async () => {
    const path = tempDb();
    const first = await SqliteResourceLeaseReplicator.open({ path });
    await first.publish([ev(1)]);
    await first.close();
    const raw = new Database(path);
    raw.exec(
      "CREATE TRIGGER fail_5 BEFORE INSERT ON resourcelease_events WHEN NEW.sequence = 5 BEGIN SELECT RAISE(ABORT, 'disk is full'); END",
    );
    raw.close();
    // Two events per transaction: 2-3 commits, 4-5 fails, 6-7 waits behind it.
    const log = await SqliteResourceLeaseReplicator.open({ path, maxBatchEvents: 2 });
    const results = await Promise.allSettled([2, 3, 4, 5, 6, 7].map((n) => log.publish([ev(n)])));
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
    ]);
    for (const r of results.slice(2)) {
      const reason = (r as PromiseRejectedResult).reason;
      expect(reason.code).toBe(ErrorCodes.sqlite.writeFailed);
    }
    expect((results[2] as PromiseRejectedResult).reason.metadata).toMatchObject({ sequence: "4" });
    expect((results[2] as PromiseRejectedResult).reason.message).toContain("disk is full");
    expect(log.stats()).toMatchObject({ lastCommittedSequence: 3, faulted: true });
    expect((await rejection(log.publish([ev(8)]))).code).toBe(ErrorCodes.sqlite.writeFailed);
    await log.close();
    const reopened = await SqliteResourceLeaseReplicator.open({ path, writerThread: false });
    expect((await eventsOf(reopened)).map((e) => e.sequenceNumber)).toEqual([1, 2, 3]);
    await reopened.close();
  });

  it("faults with write_failed when the thread dies, instead of hanging the publishes", async () => {
    const log = await SqliteResourceLeaseReplicator.open({ path: tempDb() });
    await log.publish([ev(1)]);
    await (log as unknown as { store: { worker: { terminate(): Promise<number> } } }).store.worker.terminate();
    const err = await rejection(log.publish([ev(2)]));
    expect(err.code).toBe(ErrorCodes.sqlite.writeFailed);
    expect(err.message).toContain("writer thread exited");
    await log.close();
  });

  it("refuses a damaged log at open with the same coded error as the calling thread", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish([ev(1), ev(2), ev(3)]);
    await log.close();
    const raw = new Database(path);
    raw.prepare("UPDATE resourcelease_events SET checksum = '00000000' WHERE sequence = 2").run();
    raw.close();
    const threaded = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread: true }));
    const local = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread: false }));
    expect(threaded.code).toBe(ErrorCodes.sqlite.corrupt);
    expect(threaded.status).toBe("data-loss");
    expect({ message: threaded.message, metadata: threaded.metadata }).toEqual({
      message: local.message,
      metadata: local.metadata,
    });
  });

  it("checks a read's checksums on the thread that reads the page: a damaged row fails the read as it does locally", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    await log.publish(Array.from({ length: 5000 }, (_, i) => ev(i + 1)));
    await log.close();
    // Sets a row's checksum with the file closed (a log refuses to open while another connection holds it).
    const setChecksum = (sequence: number, checksum: (data: Buffer) => string) => {
      const raw = new Database(path);
      const data = raw.prepare("SELECT data FROM resourcelease_events WHERE sequence = ?").pluck().get(sequence);
      raw
        .prepare("UPDATE resourcelease_events SET checksum = ? WHERE sequence = ?")
        .run(checksum(data as Buffer), sequence);
      raw.close();
    };
    // A well-formed CRC that is not the row's: the page's first row, and one in the page read ahead.
    for (const sequence of [1, 4500]) {
      setChecksum(sequence, () => "deadbeef");
      const errors = [];
      for (const writerThread of [true, false]) {
        const reader = await SqliteResourceLeaseReplicator.open({ path, writerThread, verifyOnOpen: "on-read" });
        errors.push(await rejection(eventsOf(reader)));
        await reader.close();
      }
      const [threaded, local] = errors;
      expect(threaded?.code).toBe(ErrorCodes.sqlite.corrupt);
      expect(threaded?.metadata).toMatchObject({ sequence: String(sequence), reason: "checksum" });
      expect({ message: threaded?.message, metadata: threaded?.metadata }).toEqual({
        message: local?.message,
        metadata: local?.metadata,
      });
      setChecksum(sequence, checksumOf);
    }
    // Every row intact again: both threads read all 5,000, the same.
    const threaded = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read" });
    const events = await eventsOf(threaded);
    await threaded.close();
    expect(events).toHaveLength(5000);
    expect(events[4499]).toEqual(ev(4500));
  });

  it("keeps a log either thread reads the same: events, snapshots, and a rebuild equal to the live queue", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 40 });
    for (let i = 0; i < 60; i++) {
      await durable.queue.enqueueMany([item(`a${i}`), item(`b${i}`, { body: new Uint8Array([i, 255, 0]) })]);
      const grants = await durable.queue.lease({ maxItems: 2, peerId: "w" });
      if (grants[0]) await durable.queue.complete(grants[0].ownershipToken);
    }
    const live = durable.queue.snapshot();
    const liveEvents = await eventsOf(durable.replicator);
    // Closing stores one more snapshot (the thread writes it), of the live state.
    await durable.close();
    const threaded = await SqliteResourceLeaseReplicator.open({ path });
    const threadedEvents = await eventsOf(threaded);
    expect(threadedEvents).toEqual(liveEvents);
    const snapshot = threaded.latestSnapshot();
    expect(snapshot?.lastEventSequence).toBe(live.lastEventSequence);
    await threaded.close();
    const local = await SqliteResourceLeaseReplicator.open({ path, writerThread: false });
    expect(await eventsOf(local)).toEqual(threadedEvents);
    expect(local.latestSnapshot()).toEqual(snapshot);
    await local.close();
    const rebuilt = await ResourceLeaseQueue.rebuild(threadedEvents, {}, { activeLeases: "keep" });
    const { lastEventSequence, pending, active, deadLetters } = rebuilt.snapshot();
    expect({ lastEventSequence, pending, active, deadLetters }).toEqual({
      lastEventSequence: live.lastEventSequence,
      pending: live.pending,
      active: live.active,
      deadLetters: live.deadLetters,
    });
    await rebuilt.close();
  });

  it("reads pages ahead on the thread and stays exact when other calls and commits come between two pages", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path });
    const total = 4096 * 2 + 300; // more than two full pages: two read-aheads
    for (let from = 1; from <= total; from += 1000) {
      await log.publish(Array.from({ length: Math.min(1000, total - from + 1) }, (_, i) => ev(from + i)));
    }
    // Two readers in turn, each interrupted between pages by a synchronous call (a snapshot read) and by new commits:
    // the page read ahead for the first is dropped, not handed to the second or to the call.
    const a = log.read(1)[Symbol.asyncIterator]();
    const b = log.read(2)[Symbol.asyncIterator]();
    const seen: number[] = [];
    const seenB: number[] = [];
    for (let i = 0; i < total; i++) {
      const next = await a.next();
      if (next.done) break;
      seen.push(next.value.sequenceNumber);
      if (i === 4095 || i === 5000) {
        expect(log.latestSnapshot()).toBeUndefined();
        const other = await b.next();
        seenB.push(other.done ? -1 : other.value.sequenceNumber);
      }
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(seenB).toEqual([2, 3]);
    // A commit after a page was read ahead: a new read sees it.
    await log.publish([ev(total + 1)]);
    expect((await eventsOf(log)).map((e) => e.metadata.n)).toEqual([...seen, total + 1].map(String));
    await log.close();
  });
});
