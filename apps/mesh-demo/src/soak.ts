/**
 * The soak: the demo's dispatcher under a steady mixed load (enqueue, lease, complete, fail with and without requeue)
 * for a while, sampling its memory and data directory every second, then checking that nothing grows without bound
 * after the warm-up. `pnpm soak` runs ten minutes; CI runs a short one (apps/mesh-demo/test/soak.test.ts).
 *
 *   node dist/soak.js [--duration 600s] [--warmup 120s] [--rate 960] [--depth 3000] [--dead-letter-max 2000]
 *                     [--rss-slope-limit 4] [--kill-every 180s] [--first-kill T] [--partition-every 120s]
 *                     [--partition-for 10s] [--partition-by auto|netns|sigstop]
 *                     [--lease-duration-ms 5000] [--rewarm 30s] [--out DIR]
 *
 * Faults (src/soak-faults.ts): the dispatcher is killed -9 every `--kill-every` and started again on its data
 * directory (its samples count again `--rewarm` after the restart); a worker process of its own is cut off every
 * `--partition-every` for `--partition-for`, longer than a lease, then let back: its network namespace's link goes
 * down (`--partition-by netns`; `auto`, the default, when `ip netns` works, else SIGSTOP with a note on stderr). `0` turns either off. At the end the soak completes what is left and proves from its
 * ledger that no acknowledged item was lost.
 *
 * Exit code 0 when every check holds, 1 when one fails (the summary says which), 2 for a usage error.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { HttpOutbound, isOmniRelayError, ResourceLeaseClient, type ResourceLeaseGrant } from "@omnirelay/core";
import { parseDurationMs, UsageError } from "./config.js";
import {
  LAST_ATTEMPT,
  type PartitionBy,
  refusedAsLate,
  SoakDispatcher,
  SoakLedger,
  SoakWorker,
  serialOf,
  soakNetwork,
  workerMain,
} from "./soak-faults.js";
import { judge, type SoakFinal, type SoakOptions, type SoakSample, type SoakSummary } from "./soak-judge.js";
import { writeSoakResults } from "./soak-plot.js";

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
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return 0; // killed a moment ago
  }
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

/** The largest files under `dir` (path relative to it → bytes), largest first: where the disk went. */
function largestFiles(dir: string, top = 8): Record<string, number> {
  const files: Array<[string, number]> = [];
  const walk = (at: string, rel: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path, `${rel}${entry.name}/`);
      else files.push([`${rel}${entry.name}`, statSync(path).size]);
    }
  };
  try {
    walk(dir, "");
  } catch {
    // A file removed while listing (a WAL checkpoint): report what was seen.
  }
  return Object.fromEntries(files.sort((a, b) => b[1] - a[1]).slice(0, top));
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

/** Reads `name{...label...} value` from a Prometheus exposition. */
function metricWith(text: string, name: string, label: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(label)) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/** Runs the soak against a dispatcher process of its own and returns the verdict (also written to `outDir`). */
export async function runSoak(options: SoakOptions): Promise<SoakSummary> {
  const dataDir = mkdtempSync(join(tmpdir(), "omnirelay-soak-"));
  const [rpcPort, httpPort] = [await freePort(), await freePort()];
  const { network, by: partitionBy } = options.partitionEveryMs
    ? soakNetwork(String(rpcPort), options.partitionBy ?? "auto")
    : { network: undefined, by: undefined };
  // With a namespace, the dispatcher listens on the bridge's address so the worker can reach it.
  const url = `http://${network?.hostIp ?? "127.0.0.1"}:${rpcPort}`;
  const dispatcher = new SoakDispatcher(
    [
      ...["--roles", "dispatcher,diagnostics", "--rpc-url", url, "--http-url", `http://127.0.0.1:${httpPort}`],
      ...["--data-dir", dataDir, "--shards", "soak", "--log-level", "warn"],
      ...["--high-watermark", String(options.depth * 4), "--low-watermark", String(options.depth * 2)],
      ...["--dead-letter-max", String(options.deadLetterMax)],
      // Leases shorter than a partition, so the stopped worker's leases run out and its items go to others.
      ...["--lease-duration-ms", String(options.leaseDurationMs ?? 30_000)],
    ],
    url,
  );
  const namespace = "resourcelease.mesh";
  const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), namespace, caller: "soak" });
  const ledger = new SoakLedger();
  const errors: Record<string, number> = {};
  const restartErrors: Record<string, number> = {};
  const samples: SoakSample[] = [];
  let ops = 0;
  let stop = false;
  let worker: SoakWorker | undefined;
  let final: SoakFinal | undefined;
  let readyAt = 0;
  let dataFiles: Record<string, number> = {};
  try {
    await dispatcher.start();
    if (options.partitionEveryMs) worker = new SoakWorker(url, ledger, network);
    const pace = new Pace(options.rate);
    const started = performance.now();
    const count = (error: unknown) => {
      const code = isOmniRelayError(error) ? error.code : String((error as Error)?.message ?? error);
      // Calls that were in flight when the dispatcher was killed, or reached it while it restarted.
      const faulted = dispatcher.down || performance.now() - readyAt < 2_000;
      const into = faulted ? restartErrors : errors;
      into[code] = (into[code] ?? 0) + 1;
    };
    const body = new Uint8Array(200).fill(7);
    let pendingEstimate = 0;
    let serial = 0;
    const producer = async () => {
      while (!stop) {
        if (pendingEstimate >= options.depth || dispatcher.down) {
          await sleep(5);
          continue;
        }
        await pace.take();
        const first = serial;
        const batch = Array.from({ length: 1 + (serial % 4) }, () => ({
          resourceType: "table",
          resourceId: `soak-${serial++}`,
          partitionKey: `p${serial % 64}`,
          payloadEncoding: "bin",
          body,
        }));
        try {
          await client.enqueueMany(batch);
          for (let i = first; i < first + batch.length; i++) ledger.enqueued(i);
          ops++;
        } catch (error) {
          count(error);
        }
      }
    };
    // Settles `grant` (complete, or fail with or without requeue); a call the dispatcher may have applied settles it.
    const settle = async (grant: ResourceLeaseGrant, roll: number) => {
      const id = serialOf(grant.payload.resourceId);
      if (grant.attempt >= LAST_ATTEMPT) ledger.settled(id);
      try {
        if (roll < 17) await client.complete(grant.ownershipToken);
        else await client.fail(grant.ownershipToken, { reason: "soak", requeue: roll < 19 });
        if (roll < 17 || roll >= 19) ledger.settled(id);
        ops++;
      } catch (error) {
        if (!refusedAsLate(error) && (roll < 17 || roll >= 19)) ledger.settled(id);
        count(error);
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
          await settle(grant, n++ % 20);
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
            incarnation: dispatcher.incarnation,
            rssBytes: rssOf(dispatcher.pid),
            heapUsedBytes: metric(text, "nodejs_heap_size_used_bytes"),
            externalBytes: metric(text, "nodejs_external_memory_bytes"),
            handles: metric(text, "nodejs_active_handles_total"),
            timers: metricWith(text, "nodejs_active_resources", 'type="Timeout"'),
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
    // Every `killEveryMs`: kill -9 the dispatcher and start it again; every `partitionEveryMs`: stop the worker.
    const every = async (ms: number | undefined, fault: () => Promise<unknown>, first = ms) => {
      if (!ms) return;
      for (let at = first ?? ms; at < options.durationMs && !stop; at += ms) {
        await sleep(Math.max(0, at - (performance.now() - started)));
        if (!stop) await fault();
      }
    };
    const faults = [
      every(
        options.killEveryMs,
        async () => {
          await dispatcher.kill9(started);
          readyAt = performance.now();
        },
        options.firstKillMs,
      ),
      every(options.partitionEveryMs, () => (worker as SoakWorker).partition(options.partitionForMs ?? 10_000)),
    ];
    // Eight consumer lanes: each waits for one call at a time, and four could not reach 500 ops/s when a call takes
    // 15–20 ms (a slow host's fsync), so the queue sat at its depth and the load, not the dispatcher, set the rate.
    const tasks = [sampler(), producer(), producer(), ...Array.from({ length: 8 }, (_, lane) => consumer(lane))];
    // The worker stops one lease before the end, so its last leases have run out when the final drain starts.
    const workerEnd = Math.max(0, options.durationMs - (options.leaseDurationMs ?? 30_000));
    await sleep(workerEnd);
    await worker?.stop();
    await sleep(options.durationMs - workerEnd);
    stop = true;
    await Promise.all([...tasks, ...faults]);
    final = await finalDrain(client, ledger, options);
  } finally {
    stop = true;
    await worker?.stop();
    await client.close();
    await dispatcher.stop();
    network?.destroy();
    dataFiles = largestFiles(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
  const faults = { restarts: dispatcher.restarts, partitions: worker?.partitions ?? 0, restartErrors };
  const summary = {
    ...judge(samples, options, { errors, faults, final }),
    ...(partitionBy ? { partitionBy } : {}),
    dataFiles,
  };
  writeSoakResults(options, summary, samples);
  return summary;
}

/**
 * After the load: completes everything still pending (waiting out the leases the worker held and delayed retries),
 * lists the dead letters, and counts acknowledged items that are neither settled nor dead-lettered: lost.
 */
async function finalDrain(client: ResourceLeaseClient, ledger: SoakLedger, options: SoakOptions): Promise<SoakFinal> {
  const until = performance.now() + 60_000 + (options.leaseDurationMs ?? 30_000);
  let stats = await client.stats();
  while (performance.now() < until) {
    const grants = await client.lease({ maxItems: 100, peerId: "soak-drain" });
    if (grants.length > 0) await client.completeMany(grants.map((g) => g.ownershipToken));
    for (const grant of grants) ledger.settled(serialOf(grant.payload.resourceId));
    stats = await client.stats();
    if (stats.pendingCount + stats.activeLeaseCount + stats.delayedCount === 0) break;
    if (grants.length === 0) await sleep(100);
  }
  const dead = await client.deadLetters({ limit: Math.max(1, options.deadLetterMax) });
  const deadSerials = new Set(dead.map((d) => serialOf(d.payload.resourceId)));
  const lost = ledger.unsettled().filter((s) => !deadSerials.has(s));
  return {
    acknowledged: ledger.acknowledged,
    lost: lost.length,
    lostSample: lost.slice(0, 10),
    pending: stats.pendingCount,
    active: stats.activeLeaseCount,
    delayed: stats.delayedCount,
    deadLetters: stats.deadLetterCount ?? 0,
    deadLettersListed: dead.length,
  };
}

function partitionBy(text: string): PartitionBy | "auto" {
  if (text === "auto" || text === "netns" || text === "sigstop") return text;
  throw new UsageError("--partition-by must be auto, netns or sigstop");
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
      "kill-every": { type: "string", default: "180s" },
      "first-kill": { type: "string" },
      "partition-every": { type: "string", default: "120s" },
      "partition-for": { type: "string", default: "10s" },
      "partition-by": { type: "string", default: "auto" },
      "lease-duration-ms": { type: "string", default: "5000" },
      rewarm: { type: "string", default: "30s" },
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
  // "0" turns a fault off.
  const every = (name: string, text: string) => (text === "0" ? 0 : parseDurationMs(name, text));
  return {
    durationMs,
    warmupMs,
    rate: int("rate", values.rate),
    depth: int("depth", values.depth),
    deadLetterMax: int("dead-letter-max", values["dead-letter-max"]),
    rssSlopeLimitMiBPerMin: int("rss-slope-limit", values["rss-slope-limit"]),
    killEveryMs: every("kill-every", values["kill-every"]),
    ...(values["first-kill"] ? { firstKillMs: parseDurationMs("first-kill", values["first-kill"]) } : {}),
    partitionEveryMs: every("partition-every", values["partition-every"]),
    partitionForMs: parseDurationMs("partition-for", values["partition-for"]),
    partitionBy: partitionBy(values["partition-by"]),
    leaseDurationMs: int("lease-duration-ms", values["lease-duration-ms"]),
    rewarmMs: parseDurationMs("rewarm", values.rewarm),
    outDir: resolve(values.out),
  };
}

async function cli(): Promise<void> {
  if (process.argv[2] === "worker" && process.argv[3]) return workerMain(process.argv[3]);
  let options: SoakOptions;
  try {
    options = parseSoakArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(2);
  }
  console.error(
    `soak: ${options.durationMs / 1000} s (warm-up ${options.warmupMs / 1000} s) at ${options.rate} ops/s, depth ${options.depth}; kill -9 every ${(options.killEveryMs ?? 0) / 1000} s, worker partition every ${(options.partitionEveryMs ?? 0) / 1000} s`,
  );
  const summary = await runSoak(options);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.exitCode = summary.ok ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.dirname, "soak.js")) void cli();
