import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";

// The short soak CI runs (finding 10 of the hardening issue); `pnpm soak` runs the ten-minute one. On the code before
// the hardening this fails three ways: RSS grew ~15 MiB/min after the warm-up (bodies pinning 8 KiB pool slabs,
// unbounded dead letters), the data directory more than doubled (no retention), and dead letters passed any bound.
const soakScript = resolve(import.meta.dirname, "../dist/soak.js");
/** Half the offered rate: the least the soak must sustain. */
const opsFloor = 125;
/** The RSS trend (MiB/min) the soak's judge allows after the warm-up; see the comment at its flag. */
const rssSlopeLimit = 12;

describe("soak (short)", () => {
  it("keeps RSS, external memory, handles, the data directory and the dead letters flat across a kill -9 and partitions, losing nothing", async () => {
    const out = mkdtempSync(join(tmpdir(), "omnirelay-soak-test-"));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    const args = [
      soakScript,
      // 250 ops/s: what this 2-core machine sustains beside the dispatcher with room to spare (at 500 the load reached
      // 250–450 depending on the host, and the short window's RSS trend then measured the process still settling).
      ...["--duration", "90s", "--warmup", "40s", "--rate", "250", "--depth", "1500"],
      // The trend limit: the restarted process's 40 s window still holds its settling — measured 4.2, 5.6, 7.4, 8.3 and
      // 8.7 MiB/min in runs that lost nothing and ended within 4 % of where they started — so 8 failed CI now and then.
      // 12 still fails the leak the hardening fixed (14.9 MiB/min); the ten-minute `pnpm soak` keeps its limit of 4.
      ...["--dead-letter-max", "300", "--rss-slope-limit", String(rssSlopeLimit), "--out", out],
      // The faults fit in the same 90 s: one kill -9 of the dispatcher early in the warm-up (the restarted process gets
      // the same 40 s warm-up and then most of the window to show a trend), and two 8 s network partitions of the worker.
      ...["--first-kill", "10s", "--kill-every", "90s", "--rewarm", "40s"],
      ...["--partition-every", "30s", "--partition-for", "8s", "--lease-duration-ms", "5000"],
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((res) => child.once("exit", (c) => res(c)));
    const { summary } = JSON.parse(readFileSync(join(out, "soak-summary.json"), "utf8"));
    // The margins, in the CI log: it runs beside the demo's other test files (scripts/test.mjs).
    console.log(
      `soak: ${summary.opsPerSecond} ops/s (floor ${opsFloor}), RSS trend ${summary.rssSlopeMiBPerMin} MiB/min (limit ${rssSlopeLimit}), ` +
        `${summary.final.acknowledged} acknowledged, ${summary.final.lost} lost`,
    );
    expect(summary.failures, `${stdout}\n${stderr}`).toEqual([]);
    expect(code).toBe(0);
    // The dead-letter bound was reached (so purging ran) and nothing failed but fenced late calls.
    expect(summary.maxDeadLetters).toBe(300);
    expect(summary.opsPerSecond).toBeGreaterThanOrEqual(opsFloor);
    // The faults happened, and the dispatcher came back from the kill without losing an acknowledged item.
    expect(summary.restarts).toHaveLength(1);
    expect(summary.partitions).toBe(2);
    // CI runs as root: the worker is cut off by its network namespace's link, not frozen.
    expect(summary.partitionBy).toBe("netns");
    expect(summary.rssByIncarnationMiB.length).toBeGreaterThan(0);
    expect(summary.final.acknowledged).toBeGreaterThan(1000);
    expect(summary.final.lost).toBe(0);
    const csv = readFileSync(join(out, "soak-samples.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe(
      "tMs,incarnation,rssBytes,heapUsedBytes,externalBytes,handles,timers,pending,active,deadLetters,dataDirBytes,opsTotal",
    );
    expect(csv.length).toBeGreaterThan(60);
    // The RSS curve, plotted: one line per dispatcher process (the first and the one after the kill).
    const svg = readFileSync(join(out, "soak-rss.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect([...svg.matchAll(/data-incarnation="(\d+)"/g)].map((m) => m[1])).toEqual(["1", "2"]);
  }, 180_000);
});
