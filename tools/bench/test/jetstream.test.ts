import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import type { ScenarioResult } from "../src/lib/report.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "omnirelay-bench-js-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

async function benchStreams(): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.includes("OMNIBENCH_")) names.push(name);
    return names;
  } finally {
    await nc.close();
  }
}

describe("pnpm bench -- --log jetstream", () => {
  // Harness test only (no speed assertions): the machine's NATS with JetStream, PostgreSQL and redis-server.
  it("adds the JetStream-log dispatcher to enqueue-batch and lifecycle-c100 beside SQLite and the peers, then deletes its stream", async () => {
    const before = await benchStreams();
    const out = join(dir, "bench-results.json");
    const args = ["--quick", "--log", "jetstream", "--nats-url", natsUrl];
    await run(
      "pnpm",
      ["bench", "--", ...args, "--only", "enqueue-batch", "--only", "lifecycle-c100", "--only", "lifecycle-c10"],
      {
        cwd: join(import.meta.dirname, ".."),
        env: { ...process.env, BENCH_OUT: out },
        timeout: 110_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      run: { log: { kinds: string[]; natsUrl: string; replicas: number } };
      scenarios: ScenarioResult[];
    };
    expect(json.run.log).toEqual({ kinds: ["sqlite", "jetstream"], natsUrl, replicas: 1 });
    const byId = new Map(json.scenarios.map((s) => [s.id, s]));
    for (const id of ["enqueue-batch", "lifecycle-c100"]) {
      const scenario = byId.get(id)!;
      for (const system of ["omnirelay-jetstream", "omnirelay-http", "bullmq", "graphile"] as const) {
        expect(scenario.systems, id).toContain(system);
        expect(scenario.metrics[0]?.values[system]?.median, `${id}/${system}`).toBeGreaterThan(0);
      }
      expect(scenario.metrics[0]?.ratios["omnirelay-jetstream"]?.bullmq, id).toBeGreaterThan(0);
    }
    // Only those two rows: the other scenarios do not run on the JetStream log.
    expect(byId.get("lifecycle-c10")?.systems).not.toContain("omnirelay-jetstream");
    expect(byId.get("lifecycle-c10")?.metrics[0]?.values["omnirelay-jetstream"]).toBeUndefined();
    // The run's stream and snapshot bucket are gone.
    expect(await benchStreams()).toEqual(before);
  }, 120_000);
});
