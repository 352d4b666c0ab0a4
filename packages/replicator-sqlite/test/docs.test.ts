import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { here } from "./drill-helpers.js";
import { tempDir } from "./helpers.js";

const run = promisify(execFile);
const root = join(here, "..", "..", "..");
const guide = readFileSync(join(root, "docs", "guides", "sqlite-replication.md"), "utf8");
const commands = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

describe("docs/guides/sqlite-replication.md", () => {
  it("has shell commands to run", () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  it.each(commands)(
    "runs `%s` from the repository root",
    async (command) => {
      const { stdout } = await run("bash", ["-euo", "pipefail", "-c", command], { cwd: root, timeout: 60_000 });
      expect(stdout).toContain("eventsPerSecond");
    },
    60_000,
  );
});

describe("docs/performance.md's restart measurement", () => {
  it("fills a log, times restarts, and summarises a CPU profile of one (bench/restart.mjs, cpuprofile-top.mjs)", async () => {
    const bench = join(here, "..", "bench");
    const { stdout } = await run("node", [join(bench, "restart.mjs"), "3000", "1"], { timeout: 60_000 });
    expect(stdout).toMatch(/median \d+ ms/);
    expect(stdout).toContain("3000");
    const dir = tempDir();
    const log = join(dir, "log.db");
    await run("node", [join(bench, "restart.mjs"), "fill", log, "2000"], { timeout: 60_000 });
    const opened = await run("node", ["--cpu-prof", `--cpu-prof-dir=${dir}`, join(bench, "restart.mjs"), "open", log]);
    expect(JSON.parse(opened.stdout)).toMatchObject({ pending: 2000, replayedEvents: 2000 });
    const profile = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    const top = await run("node", [join(bench, "cpuprofile-top.mjs"), join(dir, profile!), "5"]);
    expect(top.stdout).toMatch(/^total \d+ ms/);
    // `fill <path> <events> <done>` then leases and completes the first `done` items, as the benchmark's lifecycle
    // at depth leaves its log: two more events each, and only the rest pending after a restart.
    const mixed = join(dir, "mixed.db");
    const filled = await run("node", [join(bench, "restart.mjs"), "fill", mixed, "2000", "500"], { timeout: 60_000 });
    expect(JSON.parse(filled.stdout)).toMatchObject({ events: 2000, done: 500 });
    const reopened = await run("node", [join(bench, "restart.mjs"), "open", mixed]);
    expect(JSON.parse(reopened.stdout)).toMatchObject({ pending: 1500, replayedEvents: 3000 });
  }, 120_000);
});

describe("docs/performance.md's fsync probe", () => {
  it("times write + fdatasync pairs on a real file and reports ordered percentiles (bench/fsync-probe.mjs)", async () => {
    const dir = tempDir();
    const { stdout } = await run("node", [join(here, "..", "bench", "fsync-probe.mjs"), "50", dir]);
    const probe = JSON.parse(stdout) as { count: number; p50: number; p90: number; p99: number; max: number };
    expect(probe.count).toBe(50);
    expect(probe.p50).toBeGreaterThan(0);
    expect(probe.p50).toBeLessThanOrEqual(probe.p90);
    expect(probe.p90).toBeLessThanOrEqual(probe.p99);
    expect(probe.p99).toBeLessThanOrEqual(probe.max);
    // It cleans up after itself.
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);
});
