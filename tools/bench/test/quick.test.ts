import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { ScenarioResult } from "../src/lib/report.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "omnirelay-bench-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("pnpm bench -- --quick", () => {
  // Harness smoke test only: no speed assertions. Needs the built dist/, a local PostgreSQL and redis-server.
  it("runs every scenario for every system and writes the JSON and the table", async () => {
    const out = join(dir, "bench-results.json");
    const { stdout, stderr } = await run("pnpm", ["bench", "--", "--quick"], {
      cwd: join(import.meta.dirname, ".."),
      env: { ...process.env, BENCH_OUT: out },
      timeout: 170_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      machine: { cores: number };
      run: { mode: string; without: string[] };
      scenarios: ScenarioResult[];
      restarts: Record<string, { ms: number; events?: number; replayedEvents?: number }>;
    };
    expect(json.run.mode).toBe("quick");
    expect(json.run.without).toEqual([]);
    expect(json.machine.cores).toBeGreaterThan(0);
    const ids = json.scenarios.map((s) => s.id);
    expect(ids).toEqual([
      "enqueue-single",
      "enqueue-batch",
      "lifecycle-c1",
      "lifecycle-c10",
      "lifecycle-c100",
      "lifecycle-4x25",
      "latency-1000",
      "tenant-latency",
      "depth-small",
      "depth-large",
      "delayed-none",
      "delayed-large",
      "rss-large",
      "restart-large",
    ]);
    for (const scenario of json.scenarios) {
      expect(scenario.systems, scenario.id).toContain("omnirelay-http");
      expect(scenario.systems, scenario.id).toContain("bullmq");
      for (const metric of scenario.metrics) {
        for (const system of scenario.systems) {
          const value = metric.values[system];
          expect(value?.samples.length, `${scenario.id}/${metric.key}/${system}`).toBe(1);
          expect(Number.isFinite(value?.median), `${scenario.id}/${metric.key}/${system}`).toBe(true);
          expect(value?.median, `${scenario.id}/${metric.key}/${system}`).toBeGreaterThan(0);
        }
        expect(metric.ratios["omnirelay-http"]?.bullmq, `${scenario.id}/${metric.key}`).toBeGreaterThan(0);
      }
    }
    for (const scenario of json.scenarios) expect(stdout).toContain(scenario.title);
    // The restart row's context is kept with it: how long the log was and how much of it was replayed.
    const restart = json.scenarios.find((s) => s.id === "restart-large")?.metrics[0]?.values["omnirelay-http"];
    expect(json.restarts["omnirelay-http"]?.ms).toBe(restart?.samples[0]);
    expect(json.restarts["omnirelay-http"]?.events).toBeGreaterThanOrEqual(1);
    expect(json.restarts["omnirelay-http"]?.replayedEvents).toBeGreaterThanOrEqual(0);
    expect(json.restarts.bullmq?.ms).toBeGreaterThan(0);
    // The tenant row measured only the small tenant's items, and the fair dispatcher really shares: its small tenant
    // waits less than behind the plain dispatcher's FIFO, which serves the whole flood first.
    const tenant = json.scenarios.find((s) => s.id === "tenant-latency");
    expect(tenant?.systems).toEqual(["omnirelay-fair", "omnirelay-http", "bullmq", "graphile-batched"]);
    const p99 = tenant?.metrics.find((m) => m.key === "p99")?.values;
    expect(p99?.["omnirelay-fair"]?.median).toBeLessThan(p99?.["omnirelay-http"]?.median ?? 0);
    // The four-process row really spread the items over several worker processes of every system.
    const fourProcess = json.scenarios.find((s) => s.id === "lifecycle-4x25");
    const lifecycle = json.scenarios.find((s) => s.id === "lifecycle-c10");
    expect(fourProcess?.systems).toEqual(lifecycle?.systems);
    for (const system of fourProcess?.systems ?? []) {
      const line = stderr.split("\n").find((l) => l.includes(`lifecycle-4x25 ${system} {`));
      const logged = JSON.parse(line?.slice(line.indexOf("{")) ?? "{}") as { processesUsed?: number };
      expect(logged.processesUsed, system).toBeGreaterThanOrEqual(2);
    }
  }, 180_000);
});
