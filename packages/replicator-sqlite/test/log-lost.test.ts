import { copyFileSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isOmniRelayError, type OmniRelayError } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "../src/index.js";
import { item, rejection, tempDb, tempDir } from "./helpers.js";

// A log whose file disappears while it is open (its directory deleted, the file unlinked or replaced) goes on
// committing into a file no later open can see. The high-water writer notices (ENOENT, or a path that no longer
// names the file opened) and faults the log: every later publish is refused and close rejects.

function ev(sequenceNumber: number) {
  return { sequenceNumber, eventType: "Heartbeat" as const, timestamp: 1_700_000_000_000, metadata: {} };
}

/** Publishes one event at a time (a few ms apart) until one is refused; returns the refusal and how many were acked. */
async function publishUntilRefused(
  log: SqliteResourceLeaseReplicator,
  from: number,
): Promise<{ refused: OmniRelayError | undefined; acked: number }> {
  for (let seq = from; seq < from + 300; seq++) {
    try {
      await log.publish([ev(seq)]);
    } catch (error) {
      if (!isOmniRelayError(error)) throw error;
      return { refused: error, acked: seq - from };
    }
    await sleep(5);
  }
  return { refused: undefined, acked: 300 };
}

/** Deletes `dir` while a log in it is open (moved away first: a record write racing the removal cannot stop it). */
function deleteDir(dir: string): void {
  renameSync(dir, `${dir}-deleted`);
  rmSync(`${dir}-deleted`, { recursive: true, force: true, maxRetries: 10 });
}

/** `log_lost` for the loss itself (a publish waiting to be committed) or a publish refused after it. */
function lostReason(error: OmniRelayError | undefined): string | undefined {
  return error?.metadata.reason ?? error?.metadata["fault.reason"];
}

const LOST = { status: "unavailable", code: "resourcelease.sqlite.write_failed" };

describe.each([false, true])("a log gone from disk while open (writerThread %s)", (writerThread) => {
  it("whose directory was deleted: publishes are refused with write_failed and close rejects", async () => {
    const dir = join(tempDir(), "logs");
    mkdirSync(dir);
    const path = join(dir, "log.db");
    const log = await SqliteResourceLeaseReplicator.open({ path, writerThread, highWaterIntervalMs: 20 });
    await log.publish([ev(1), ev(2)]);
    deleteDir(dir);
    const { refused } = await publishUntilRefused(log, 3);
    expect(refused).toMatchObject(LOST);
    expect(lostReason(refused), refused?.message).toBe("log_lost");
    expect(log.stats().faulted).toBe(true);
    // Every later publish is refused too, and close reports the loss.
    expect(await rejection(log.publish([ev(1000)]))).toMatchObject(LOST);
    const closing = await rejection(log.close());
    expect(closing).toMatchObject(LOST);
    expect(closing.metadata).toMatchObject({ reason: "log_lost", path });
    await expect(log.close()).rejects.toBe(closing); // idempotent
  });

  it.each([
    ["directory deleted", (path: string) => deleteDir(join(path, ".."))],
    ["file unlinked", (path: string) => rmSync(path)],
  ])("%s: the first publish after it is refused, not acknowledged into the deleted file", async (_, harm) => {
    // The high-water record is written only every second by default, so that write alone noticed the loss after ~1 s
    // of acknowledged publishes (46 in the last probe). Each commit now checks that the file is still linked.
    const dir = join(tempDir(), "logs");
    mkdirSync(dir);
    const path = join(dir, "log.db");
    const log = await SqliteResourceLeaseReplicator.open({ path, writerThread });
    await log.publish([ev(1), ev(2)]);
    harm(path);
    const { refused, acked } = await publishUntilRefused(log, 3);
    expect(acked).toBe(0);
    expect(refused).toMatchObject(LOST);
    expect(lostReason(refused), refused?.message).toBe("log_lost");
    expect(await rejection(log.publish([ev(3)]))).toMatchObject(LOST);
    expect(await rejection(log.close())).toMatchObject({ ...LOST, metadata: { reason: "log_lost" } });
  });

  it.each([
    ["unlinked", (path: string) => rmSync(path)],
    [
      "replaced by another file",
      (path: string) => {
        copyFileSync(path, `${path}.copy`);
        renameSync(`${path}.copy`, path);
      },
    ],
  ])("whose file was %s: publishes are refused, close rejects, and the next open refuses the log", async (_, harm) => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path, writerThread, highWaterIntervalMs: 20 });
    await log.publish([ev(1), ev(2)]);
    await log.flush();
    harm(path);
    const { refused, acked } = await publishUntilRefused(log, 3);
    expect(refused).toMatchObject(LOST);
    expect(lostReason(refused), refused?.message).toBe("log_lost");
    expect((await rejection(log.close())).metadata).toMatchObject({ reason: "log_lost", path });
    // Nothing acknowledged is silently lost: the next open refuses the log (the record names events the file at
    // `path` does not hold), or — a replaced file still finds the WAL, by name — holds every acknowledged event.
    const reopened = await SqliteResourceLeaseReplicator.open({ path, writerThread }).catch((e: unknown) => e);
    if (reopened instanceof SqliteResourceLeaseReplicator) {
      expect(await reopened.lastSequence()).toBeGreaterThanOrEqual(2 + acked);
      await reopened.close();
    } else {
      expect(reopened).toMatchObject({ code: "resourcelease.sqlite.corrupt" });
    }
  });
});

describe("a durable queue whose log directory is deleted while it runs", () => {
  it("refuses enqueues once the loss is seen (never acknowledging them again) and its close rejects", async () => {
    const dir = join(tempDir(), "queue");
    mkdirSync(dir);
    const path = join(dir, "q.db");
    const durable = await openDurableResourceLeaseQueue({
      path,
      snapshotEveryEvents: 0,
      replicatorOptions: { highWaterIntervalMs: 20 },
    });
    for (let i = 0; i < 5; i++) await durable.queue.enqueue(item(i));
    deleteDir(dir);
    let refused: unknown;
    for (let i = 5; i < 300 && refused === undefined; i++) {
      await durable.queue.enqueue(item(i)).catch((error: unknown) => {
        refused = error;
      });
      await sleep(5);
    }
    expect(isOmniRelayError(refused)).toBe(true);
    await expect(durable.queue.enqueue(item("after"))).rejects.toThrow();
    const closing = await rejection(durable.close());
    expect(closing).toMatchObject({ ...LOST, metadata: { reason: "log_lost" } });
  });
});

describe("a healthy log", () => {
  it("is never taken for lost: many high-water writes, then close resolves", async () => {
    const path = tempDb();
    const log = await SqliteResourceLeaseReplicator.open({ path, writerThread: false, highWaterIntervalMs: 0 });
    for (let seq = 1; seq <= 50; seq++) await log.publish([ev(seq)]);
    await log.close();
    expect(log.stats()).toMatchObject({ faulted: false, highWaterSequence: 50 });
  });
});
