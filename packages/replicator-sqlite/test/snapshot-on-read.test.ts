import { ErrorCodes } from "@omnirelay/core";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { ownedBuffers } from "../src/thread-protocol.js";
import { item, rejection, tempDb } from "./helpers.js";

// An 'on-read' open (openDurableResourceLeaseQueue's) checks the newest snapshot's head and that its parts are all
// there, from their numbers; the parts' bytes are verified once, by the restore that reads them.

/** A log whose newest snapshot has three parts (12,000 pending items, 5,000 entries a part). Returns its sequence. */
async function snapshotInThreeParts(path: string): Promise<number> {
  const durable = await openDurableResourceLeaseQueue({
    path,
    snapshotEveryEvents: 0,
    queueOptions: { capacity: 20_000 },
  });
  for (let b = 0; b < 12; b++) {
    await durable.queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => item(b * 1000 + i)));
  }
  expect(durable.replicator.saveSnapshot(durable.queue.snapshot())).toBe(true);
  const last = durable.queue.stats().lastEventSequence;
  await durable.close();
  return last;
}

function changeParts(path: string, sql: string, last: number): void {
  const db = new Database(path);
  expect(db.prepare(sql).run(last).changes).toBe(1);
  db.close();
}

describe.each([
  ["the writer thread", true],
  ["this thread", false],
])("an 'on-read' open and the newest snapshot's parts (log on %s)", (_, writerThread) => {
  it("opens without reading a part's bytes, and refuses a damaged part when the restore reaches it", async () => {
    const path = tempDb();
    const last = await snapshotInThreeParts(path);
    // Part 1's bytes flipped, its checksum left: only reading the bytes can tell.
    changeParts(
      path,
      "UPDATE resourcelease_events_snapshot_parts SET data = zeroblob(length(data)) WHERE sequence = ? AND part = 1",
      last,
    );

    const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read", writerThread });
    const pieces = log.latestSnapshotInPieces()!;
    expect(pieces.head.lastEventSequence).toBe(last);
    const it = pieces.pieces[Symbol.iterator]();
    expect(it.next().value?.pending).toHaveLength(5000);
    const err = await rejection(() => it.next());
    expect(err).toMatchObject({ status: "data-loss", code: ErrorCodes.sqlite.corrupt });
    expect(err.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_checksum" });
    await log.close();

    // The durable open serves nothing from it; a full check ('all', the default) refuses it at open.
    const durable = await rejection(openDurableResourceLeaseQueue({ path, replicatorOptions: { writerThread } }));
    expect(durable.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_checksum" });
    const full = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread }));
    expect(full.metadata).toMatchObject({ sequence: String(last), reason: "snapshot_checksum" });
  }, 60_000);

  it("refuses at open a snapshot whose middle or last part is missing", async () => {
    for (const [part, reason] of [
      [1, "snapshot_checksum"],
      [2, "snapshot_decode"], // the head announces three parts; two are stored
    ] as const) {
      const path = tempDb();
      const last = await snapshotInThreeParts(path);
      changeParts(path, `DELETE FROM resourcelease_events_snapshot_parts WHERE sequence = ? AND part = ${part}`, last);
      const err = await rejection(SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read", writerThread }));
      expect(err).toMatchObject({ status: "data-loss", code: ErrorCodes.sqlite.corrupt });
      expect(err.metadata).toMatchObject({ sequence: String(last), reason });
    }
  }, 60_000);

  it("restores intact parts exactly as they were stored", async () => {
    const path = tempDb();
    const last = await snapshotInThreeParts(path);
    await using durable = await openDurableResourceLeaseQueue({ path, replicatorOptions: { writerThread } });
    expect(durable.snapshotSequence).toBe(last);
    expect(durable.replayedEvents).toBe(0);
    const [first] = await durable.queue.lease({ maxItems: 1, peerId: "w" });
    expect(first?.sequenceId).toBe(1);
    expect(durable.queue.stats().pendingCount).toBe(11_999);
  }, 60_000);
});

describe("ownedBuffers (what a page of parts transfers to the reading thread)", () => {
  it("transfers only buffers that own their whole ArrayBuffer, never a view into a shared one", () => {
    const owned = new Uint8Array(64);
    const pooled = Buffer.from("a short text lives in Node's shared pool");
    const view = new Uint8Array(new ArrayBuffer(64), 8, 16);
    const head = new Uint8Array(new ArrayBuffer(64), 0, 16);
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    expect(ownedBuffers([owned, pooled, view, head, "text"])).toEqual([owned.buffer]);
  });
});
