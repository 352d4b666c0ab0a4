import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { type SqliteDurability, SqliteResourceLeaseReplicator } from "../src/index.js";
import { built, here } from "./drill-helpers.js";
import { tempDb } from "./helpers.js";

// A log is held by one process for as long as it is open, in every durability mode. POSIX drops every lock a process
// holds on a file when the process closes any descriptor of that file; the high-water writer of a 'process-safe' or
// 'async' log used to open and close the database file for each fsync, so after its first record write another process
// could open the same log and write it too (both numbering events from the same place).

const run = promisify(execFile);
const script = join(here, "fixtures", "open-once.mjs");

const modes: [SqliteDurability, boolean][] = [
  ["process-safe", false],
  ["process-safe", true],
  ["async", false],
  ["async", true],
  ["batched", true],
];

describe("a log held open", () => {
  it.each(modes)(
    "with durability %s (writerThread %s) refuses a second process after high-water writes",
    async (durability, writerThread) => {
      expect(existsSync(built), "build the package first (pnpm build): the child runs dist/index.js").toBe(true);
      const path = tempDb();
      await using log = await SqliteResourceLeaseReplicator.open({
        path,
        durability,
        writerThread,
        highWaterIntervalMs: 5,
      });
      for (let n = 1; n <= 3; n++) {
        await log.publish([{ sequenceNumber: n, eventType: "Heartbeat", timestamp: 1_700_000_000_000, metadata: {} }]);
        await sleep(20); // a record write (with its fsyncs) after each commit
      }
      for (let i = 0; i < 100 && log.stats().highWaterSequence < 3; i++) await sleep(10);
      expect(log.stats().highWaterSequence).toBe(3);
      const { stdout } = await run(process.execPath, [script, path], { timeout: 30_000 });
      expect(JSON.parse(stdout)).toEqual({ code: "resourcelease.sqlite.locked" });
    },
  );

  it.each([false, true])(
    "refuses a second open in the same process (writerThread %s) and keeps the first one's lock",
    async (writerThread) => {
      // The second open read the file through a descriptor of its own before SQLite refused it; closing that descriptor
      // dropped the first connection's lock, and another process then opened the log.
      const path = tempDb();
      await using log = await SqliteResourceLeaseReplicator.open({ path });
      await log.publish([{ sequenceNumber: 1, eventType: "Heartbeat", timestamp: 1_700_000_000_000, metadata: {} }]);
      const second = SqliteResourceLeaseReplicator.open({ path, writerThread, busyTimeoutMs: 200 });
      await expect(second).rejects.toMatchObject({ code: "resourcelease.sqlite.locked" });
      const repair = SqliteResourceLeaseReplicator.repair(path, { truncateAfterLastGood: true });
      await expect(repair).rejects.toMatchObject({ code: "resourcelease.sqlite.locked" });
      const { stdout } = await run(process.execPath, [script, path], { timeout: 30_000 });
      expect(JSON.parse(stdout)).toEqual({ code: "resourcelease.sqlite.locked" });
      await log.publish([{ sequenceNumber: 2, eventType: "Heartbeat", timestamp: 1_700_000_000_000, metadata: {} }]);
    },
  );
});
