import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SqliteResourceLeaseReplicator } from "../src/index.js";
import { built, here } from "./drill-helpers.js";
import { filesBeside, tempDb } from "./helpers.js";

// Processes that take turns on one log: each opens it (waiting on the busy timeout while another holds it), appends
// a few events and closes it. The one closing writes its last high-water record before it lets go of the file's
// lock, and every record write has a temporary file of its own, so the next owner's record write at open never
// collides with it (it used to fail one open in eight with a spurious write_failed: "rename …hwm.tmp → …hwm: ENOENT").
// Contending opens can still meet `locked` now and then (SQLite's busy timeout running out), which is not this fault.

const run = promisify(execFile);
const script = join(here, "fixtures", "open-close-loop.mjs");

interface LoopResult {
  readonly opened: number;
  readonly failures: readonly { code: string; message: string }[];
}

describe.each([false, true])("processes opening a log as another closes it (writerThread %s)", (writerThread) => {
  it("all open it, and every event each of them appended is in the log", async () => {
    expect(existsSync(built), "build the package first (pnpm build): the children run dist/index.js").toBe(true);
    const path = tempDb();
    const processes = 3;
    const rounds = writerThread ? 15 : 30; // a writer thread takes longer to start than the race takes to show
    const outs = await Promise.all(
      Array.from({ length: processes }, () =>
        run(process.execPath, [script, path, String(rounds), String(writerThread)], { timeout: 120_000 }),
      ),
    );
    const results = outs.map((o) => JSON.parse(o.stdout) as LoopResult);
    // `locked` (the busy timeout ran out while another held the file) is a fair answer under contention; a
    // write_failed of a log nobody damaged is not.
    expect(results.flatMap((r) => r.failures).filter((f) => f.code !== "resourcelease.sqlite.locked")).toEqual([]);
    const opened = results.reduce((n, r) => n + r.opened, 0);
    expect(opened).toBeGreaterThan(processes * rounds * 0.8);
    await using log = await SqliteResourceLeaseReplicator.open({ path, writerThread: false });
    expect(await log.lastSequence()).toBe(opened * 3);
    expect(filesBeside(path).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 150_000);
});
