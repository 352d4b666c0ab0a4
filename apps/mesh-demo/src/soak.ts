/**
 * The soak: the demo's dispatcher under a steady mixed load (enqueue, lease, complete, fail with and without requeue)
 * for a while, sampling its memory and data directory every second, then checking that nothing grows without bound
 * after the warm-up. `pnpm soak` runs ten minutes; CI runs a short one (apps/mesh-demo/test/soak.test.ts).
 *
 *   node dist/soak.js [--duration 600s] [--warmup 120s] [--rate 960] [--depth 3000] [--dead-letter-max 2000]
 *                     [--rss-slope-limit 4] [--out DIR]
 *
 * Exit code 0 when every check holds, 1 when one fails (the summary says which), 2 for a usage error.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { HttpOutbound, isOmniRelayError, ResourceLeaseClient, type ResourceLeaseGrant } from "@omnirelay/core";
import { parseDurationMs, UsageError } from "./config.js";
import { judge, type SoakOptions, type SoakSample, type SoakSummary } from "./soak-judge.js";

export { judge, type SoakOptions, type SoakSample, type SoakSummary, slope } from "./soak-judge.js";

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once("error", rej);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => res(typeof address === "object" && address ? address.port : 0));
    });
  });
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    try {
      total += entry.isDirectory() ? dirBytes(path) : statSync(path).size;
    } catch {
      // A file removed between the listing and the stat (a WAL checkpoint): not there any more.
    }
  }
  return total;
}

/** Reads `name{...shard="s"} value` or `name value` from a Prometheus exposition. */
function metric(text: string, name: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/** A token bucket that lets `rate` operations a second through. */
class Pace {
  private tokens = 0;
  private last = performance.now();
  constructor(private readonly rate: number) {}
  async take(n = 1): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.rate / 10, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= n) {
        this.tokens -= n;
        return;
      }
      await sleep(Math.max(1, ((n - this.tokens) / this.rate) * 1000));
    }
  }
}

/** Runs the soak against a dispatcher process of its own and returns the verdict (also written to `outDir`). */
export async function runSoak(options: SoakOptions): Promise<SoakSummary> {
  const dataDir = mkdtempSync(join(tmpdir(), "omnirelay-soak-"));
  const [rpcPort, httpPort] = [await freePort(), await freePort()];
  const main = resolve(import.meta.dirname, "main.js");
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      "--roles",
      "dispatcher,diagnostics",
      "--rpc-url",
      `http://127.0.0.1:${rpcPort}`,
      "--http-url",
      `http://127.0.0.1:${httpPort}`,
      "--data-dir",
      dataDir,
      "--shards",
      "soak",
      "--high-watermark",
      String(options.depth * 4),
      "--low-watermark",
      String(options.depth * 2),
      "--dead-letter-max",
      String(options.deadLetterMax),
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const url = `http://127.0.0.1:${rpcPort}`;
  const namespace = "resourcelease.mesh";
  const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), namespace, caller: "soak" });
  const errors: Record<string, number> = {};
  const samples: SoakSample[] = [];
  let ops = 0;
  let stop = false;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/readyz`)).ok) break;
      } catch {
        // Not listening yet.
      }
      if (i > 200 || child.exitCode !== null) throw new Error("the dispatcher did not become ready");
      await sleep(100);
    }
    const pace = new Pace(options.rate);
    const started = performance.now();
    const count = (error: unknown) => {
      const code = isOmniRelayError(error) ? error.code : String((error as Error)?.message ?? error);
      errors[code] = (errors[code] ?? 0) + 1;
    };
    const body = new Uint8Array(200).fill(7);
    let pendingEstimate = 0;
    let serial = 0;
    const producer = async () => {
      while (!stop) {
        if (pendingEstimate >= options.depth) {
          await sleep(5);
          continue;
        }
        await pace.take();
        const batch = Array.from({ length: 1 + (serial % 4) }, () => ({
          resourceType: "table",
          resourceId: `soak-${serial++}`,
          partitionKey: `p${serial % 64}`,
          payloadEncoding: "bin",
          body,
        }));
        try {
          await client.enqueueMany(batch);
          ops++;
        } catch (error) {
          count(error);
        }
      }
    };
    const consumer = async (lane: number) => {
      let n = lane;
      while (!stop) {
        await pace.take();
        let grants: ResourceLeaseGrant[] = [];
        try {
          grants = await client.lease({ maxItems: 8, peerId: `soak-worker-${lane}` });
          ops++;
        } catch (error) {
          count(error);
        }
        if (grants.length === 0) await sleep(10);
        for (const grant of grants) {
          await pace.take();
          const roll = n++ % 20;
          try {
            if (roll < 17) await client.complete(grant.ownershipToken);
            else await client.fail(grant.ownershipToken, { reason: "soak", requeue: roll < 19 });
            ops++;
          } catch (error) {
            count(error);
          }
        }
      }
    };
    const sampler = async () => {
      while (!stop) {
        const tMs = performance.now() - started;
        try {
          const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
          const stats = await client.stats();
          pendingEstimate = stats.pendingCount;
          samples.push({
            tMs,
            rssBytes: rssOf(child.pid!),
            heapUsedBytes: metric(text, "nodejs_heap_size_used_bytes"),
            externalBytes: metric(text, "nodejs_external_memory_bytes"),
            pending: stats.pendingCount,
            active: stats.activeLeaseCount,
            deadLetters: stats.deadLetterCount ?? 0,
            dataDirBytes: dirBytes(dataDir),
            opsTotal: ops,
          });
        } catch (error) {
          count(error);
        }
        await sleep(1000);
      }
    };
    const tasks = [sampler(), producer(), producer(), ...[0, 1, 2, 3].map(consumer)];
    await sleep(options.durationMs);
    stop = true;
    await Promise.all(tasks);
  } finally {
    stop = true;
    await client.close();
    child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
  const summary = judge(samples, options, errors);
  mkdirSync(options.outDir, { recursive: true });
  const columns = Object.keys(samples[0] ?? {}) as Array<keyof SoakSample>;
  writeFileSync(
    join(options.outDir, "soak-samples.csv"),
    `${columns.join(",")}\n${samples.map((s) => columns.map((c) => Math.round(s[c])).join(",")).join("\n")}\n`,
  );
  writeFileSync(join(options.outDir, "soak-summary.json"), `${JSON.stringify({ options, summary }, null, 2)}\n`);
  return summary;
}

function parseSoakArgs(argv: readonly string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv.filter((a, i) => !(a === "--" && i === 0)),
    options: {
      duration: { type: "string", default: "600s" },
      warmup: { type: "string" },
      rate: { type: "string", default: "960" },
      depth: { type: "string", default: "3000" },
      "dead-letter-max": { type: "string", default: "2000" },
      "rss-slope-limit": { type: "string", default: "4" },
      out: { type: "string", default: "soak-results" },
    },
    strict: true,
  });
  const durationMs = parseDurationMs("duration", values.duration);
  const warmupMs = values.warmup ? parseDurationMs("warmup", values.warmup) : Math.round(durationMs / 5);
  const int = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be an integer >= 1`);
    return n;
  };
  if (warmupMs >= durationMs) throw new UsageError("--warmup must be shorter than --duration");
  return {
    durationMs,
    warmupMs,
    rate: int("rate", values.rate),
    depth: int("depth", values.depth),
    deadLetterMax: int("dead-letter-max", values["dead-letter-max"]),
    rssSlopeLimitMiBPerMin: int("rss-slope-limit", values["rss-slope-limit"]),
    outDir: resolve(values.out),
  };
}

async function cli(): Promise<void> {
  let options: SoakOptions;
  try {
    options = parseSoakArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(2);
  }
  console.error(
    `soak: ${options.durationMs / 1000} s (warm-up ${options.warmupMs / 1000} s) at ${options.rate} ops/s, depth ${options.depth}`,
  );
  const summary = await runSoak(options);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.exitCode = summary.ok ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.dirname, "soak.js")) void cli();
