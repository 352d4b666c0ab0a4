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
// And no open fails `locked` while the others hold the log only briefly: two processes opening at once used to take
// the shared lock of their first read and then wait, each in SQLite's busy handler, for the exclusive lock the other's
// shared lock denied, until both timed out (4 processes × 20 rounds: 3 runs of 5 ended with most opens failed).

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
    const processes = 4;
    const rounds = writerThread ? 10 : 20; // a writer thread takes longer to start than the race takes to show
    const outs = await Promise.all(
      Array.from({ length: processes }, () =>
        run(process.execPath, [script, path, String(rounds), String(writerThread)], { timeout: 120_000 }),
      ),
    );
    const results = outs.map((o) => JSON.parse(o.stdout) as LoopResult);
    // Each holds the log for a few milliseconds against a busy timeout of 3 s: every open must get it.
    expect(results.flatMap((r) => r.failures)).toEqual([]);
    const opened = results.reduce((n, r) => n + r.opened, 0);
    expect(opened).toBe(processes * rounds);
    await using log = await SqliteResourceLeaseReplicator.open({ path, writerThread: false });
    expect(await log.lastSequence()).toBe(opened * 3);
    expect(filesBeside(path).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 150_000);
});
