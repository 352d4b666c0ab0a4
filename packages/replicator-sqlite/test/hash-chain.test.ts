import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { EventChainVerifier, hashReplicationEvent } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { decodeSnapshot, encodeSnapshotHead } from "../src/snapshot-codec.js";
import { emptySnapshot, item, tempDb } from "./helpers.js";

async function readAll(path: string, from = 1) {
  const log = await SqliteResourceLeaseReplicator.open({ path });
  const events: ResourceLeaseReplicationEvent[] = [];
  for await (const e of log.read(from)) events.push(e);
  const snapshot = log.latestSnapshot();
  await log.close();
  return { events, snapshot };
}

describe("the hash chain in a SQLite log", () => {
  it("stores every event's previousHash (row format 2) and reads it back, so the log verifies end to end", async () => {
    const path = tempDb();
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    await durable.queue.enqueueMany([1, 2, 3].map((n) => item(n, { body: new Uint8Array([n]) })));
    const [grant] = await durable.queue.lease({ peerId: "w" });
    await durable.queue.complete(grant!.ownershipToken);
    const head = durable.queue.snapshot().lastEventHash;
    await durable.close();
    const db = new Database(path, { readonly: true });
    const formats = db.prepare("SELECT sequence, substr(data, 1, 1) FROM resourcelease_events ORDER BY sequence").raw();
    expect((formats.all() as Array<[number, Buffer]>).map(([, f]) => f[0])).toEqual([1, 2, 2, 2, 2]);
    db.close();
    const { events } = await readAll(path);
    const verifier = new EventChainVerifier();
    for (const e of events) expect(verifier.push(e)).toBeUndefined();
    expect(verifier.finish()).toBeUndefined();
    expect(verifier.chainStartsAt).toBe(1);
    expect(verifier.lastHash).toBe(head);
  });

  it("a stored snapshot carries lastEventHash, and the queue restarted from it continues the chain", async () => {
    const path = tempDb();
    const first = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 2 });
    await first.queue.enqueueMany([1, 2].map((n) => item(n)));
    await first.queue.enqueue(item(3));
    await first.close();
    const again = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    await again.queue.enqueue(item(4));
    await again.close();
    const { events, snapshot } = await readAll(path);
    expect(snapshot?.lastEventHash).toBe(hashReplicationEvent(events[snapshot!.lastEventSequence - 1]!));
    const verifier = new EventChainVerifier({
      afterSequence: snapshot!.lastEventSequence,
      afterHash: snapshot!.lastEventHash,
    });
    for (const e of events.slice(snapshot!.lastEventSequence)) expect(verifier.push(e)).toBeUndefined();
    expect(verifier.finish()).toBeUndefined();
    expect(verifier.lastSequence).toBe(4);
  });

  it("the snapshot head codec round-trips lastEventHash, and reads heads without it", () => {
    const base = emptySnapshot(9);
    expect(decodeSnapshot(encodeSnapshotHead({ ...base, lastEventHash: "abc" }, 0), []).lastEventHash).toBe("abc");
    expect(decodeSnapshot(encodeSnapshotHead(base, 0), [])).not.toHaveProperty("lastEventHash");
  });
});
