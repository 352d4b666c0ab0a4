/**
 * `pnpm bench [-- --quick] [-- --reps N] [-- --log jetstream]`: OmniRelay against BullMQ and graphile-worker on this
 * machine.
 * Starts a private redis-server and a scratch PostgreSQL database, forks every process it measures, prints a
 * markdown table and writes bench-results.json (or $BENCH_OUT).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { dropDatabase } from "./lib/infra.js";
import { addSample, markdownTable, type Samples, summarize } from "./lib/report.js";
import { type Counts, DELAYED_DUE_MS, FULL_COUNTS, lifecycleRate, QUICK_COUNTS, scenarios } from "./lib/scenarios.js";
import {
  type Group,
  OMNI_DURABILITIES,
  type OmniDurability,
  PEERS,
  SYSTEM_IDS,
  type SystemHandle,
  type SystemId,
  startSystems,
  stopAll,
} from "./lib/systems.js";

/** `parseArgs`, with a usage error (exit 2) instead of a stack trace for an unknown flag or a missing value. */
function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    console.error(`error: ${(error as Error).message} (pnpm bench -- --help lists the flags)`);
    process.exit(2);
  }
}

/** The integer flag `name` gives (or `fallback`), or a usage error (exit 2) when it is not an integer >= `min`. */
function integerFlag(name: "reps" | "warmup" | "depth", min: number, fallback: number): number {
  const raw = values[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`error: --${name} must be an integer >= ${min}`);
    process.exit(2);
  }
  return value;
}

const { values } = parseFlags({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    warmup: { type: "string" },
    out: { type: "string" },
    without: { type: "string", multiple: true },
    only: { type: "string", multiple: true },
    depth: { type: "string" },
    durability: { type: "string", default: "batched" },
    log: { type: "string", default: "sqlite" },
    "nats-url": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help === true) {
  console.log(`Usage: pnpm bench [-- FLAGS]   OmniRelay against BullMQ and graphile-worker on this machine.
  --quick                 small counts, 1 repetition (under a minute)
  --reps N                repetitions (default 3; 1 with --quick)
  --warmup N              rounds of the light scenarios run first and not recorded, for every system alike
                          (default 0: the peers' first round is not always their slowest)
  --only SCENARIO         run only this scenario (repeatable)
  --without SYSTEM        skip a peer system: ${PEERS.join(", ")} (repeatable)
  --durability MODE       the OmniRelay dispatchers' SQLite mode: ${OMNI_DURABILITIES.join(", ")} (default batched)
  --log jetstream         also run a dispatcher whose log is a JetStream stream (R1) on the machine's NATS: its
                          rows are enqueue-batch and lifecycle-c100, beside SQLite and the peers (default sqlite)
  --nats-url URL          the NATS server of --log jetstream (or NATS_URL; default nats://127.0.0.1:4222)
  --depth N               pending items of the heavy scenarios (default 1,000,000)
  --out FILE              where to write the JSON results (or BENCH_OUT; default bench-results.json)
  -h, --help              print this and exit`);
  process.exit(0);
}
const quick = values.quick === true;
const reps = integerFlag("reps", 1, quick ? 1 : 3);
const warmup = integerFlag("warmup", 0, 0);
const without = (values.without ?? []) as SystemId[];
for (const id of without) {
  if (!SYSTEM_IDS.includes(id) || !PEERS.includes(id)) {
    console.error(`error: --without takes a peer system: ${PEERS.join(", ")}`);
    process.exit(2);
  }
}
if (!without.includes("bullmq")) {
  const IOREDIS: string = "ioredis";
  try {
    await import(IOREDIS);
  } catch {
    console.error("error: BullMQ needs the ioredis package (an optional peer dependency of bullmq 6): add it to");
    console.error("tools/bench's dependencies, or run without BullMQ: pnpm bench -- --without bullmq");
    process.exit(2);
  }
}
const durability = values.durability as OmniDurability;
if (!OMNI_DURABILITIES.includes(durability)) {
  console.error(`error: --durability takes ${OMNI_DURABILITIES.join(" or ")}`);
  process.exit(2);
}
if (values.log !== "sqlite" && values.log !== "jetstream") {
  console.error("error: --log takes sqlite or jetstream");
  process.exit(2);
}
const natsUrl = values["nats-url"] ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const jetstream = values.log === "jetstream" ? natsUrl : undefined;
if (values["nats-url"] !== undefined && !jetstream) {
  console.error("error: --nats-url needs --log jetstream");
  process.exit(2);
}
// Systems that do not run: the skipped peers, and the JetStream-log dispatcher unless asked for.
const notRun: readonly SystemId[] = [...without, ...(jetstream ? [] : ["omnirelay-jetstream" as const])];
const depthLarge = values.depth === undefined ? undefined : integerFlag("depth", 1000, 0);
const counts: Counts = { ...(quick ? QUICK_COUNTS : FULL_COUNTS), ...(depthLarge ? { depthLarge } : {}) };
const out = resolve(values.out ?? process.env.BENCH_OUT ?? "bench-results.json");
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const database = `omnirelay_bench_${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), "omnirelay-bench-"));
const only = values.only ?? [];
const list = scenarios(counts)
  .filter((s) => only.length === 0 || only.includes(s.id))
  .map((s) => ({ ...s, systems: s.systems.filter((id) => !notRun.includes(id)) }));
const samples = new Map<string, Samples>();
/** What each restart reported beside its time (the log's events, how many were replayed after the newest snapshot). */
const restarts: Partial<Record<SystemId, NonNullable<Awaited<ReturnType<Group["restart"]>>>>> = {};
const log = (line: string) => process.stderr.write(`${line}\n`);

/**
 * The light scenarios, `warmup + reps` times over; the first `warmup` rounds are not recorded. Every system's processes
 * live for the whole run, so a first round measures them cold (V8 compiling, heaps growing). Off by default: a
 * warm-up round also discards graphile-worker's fastest round (its rates fall as its jobs table churns), so it would
 * not treat every system alike.
 */
async function runLight(systems: readonly SystemHandle[]): Promise<void> {
  for (let round = 0; round < warmup + reps; round++) {
    const rep = round - warmup;
    const label = rep < 0 ? `[warm-up ${round + 1}/${warmup}]` : `[rep ${rep + 1}/${reps}]`;
    for (const scenario of list) {
      if (!scenario.run) continue;
      const eligible = systems.filter((s) => scenario.systems.includes(s.id));
      // Alternate: each round starts with a different system.
      const order = eligible.map((_, i) => eligible[(i + round) % eligible.length] as SystemHandle);
      for (const system of order) {
        const result = await scenario.run(system, counts);
        if (rep >= 0) addSample(samples, { scenario: scenario.id, system: system.id, values: result });
        log(`${label} ${scenario.id} ${system.id} ${JSON.stringify(roundAll(result))}`);
      }
    }
  }
}

/**
 * Per group: fill to depthLarge, RSS, the lifecycle of its systems at that depth, then a restart; then the lifecycle
 * on the emptied queue (the delayed row's baseline), fill with depthLarge delayed items and run the lifecycle beside them (last: the group is not used afterwards, and
 * OmniRelay's reset leaves delayed items in place).
 */
async function runHeavy(systems: readonly SystemHandle[], groups: readonly Group[]): Promise<void> {
  for (const group of groups) {
    await runDepth(systems, group);
    await runDelayed(systems, group);
  }
}

async function runDepth(systems: readonly SystemHandle[], group: Group): Promise<void> {
  const depthSystems = list.find((s) => s.id === "depth-large")?.systems ?? [];
  const members = systems.filter((s) => s.group === group && depthSystems.includes(s.id));
  const primary = members[0];
  if (!primary) return;
  const fillStart = performance.now();
  await group.producer.call("enqueue", { count: counts.depthLarge, batchSize: 1000, inFlight: 4 });
  log(`[heavy] ${group.name} filled ${counts.depthLarge} in ${Math.round(performance.now() - fillStart)} ms`);
  const rss = await group.serverRss();
  if (rss !== undefined) record("rss-large", primary.id, { rss: rss / 1024 / 1024 });
  // As many samples as the light rows, so this row's median is compared with the 1,000-pending row's median (one
  // sample swung from -6 % to -16 % between runs). Each run enqueues and consumes depthItems: the depth stays.
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < members.length; i++) {
      const system = members[(i + rep) % members.length] as SystemHandle;
      const options = { count: counts.depthItems, concurrency: 100, remaining: counts.depthLarge };
      record("depth-large", system.id, { rate: (await lifecycleRate(system, options)).rate });
    }
  }
  const restarted = await group.restart();
  if (restarted) {
    record("restart-large", primary.id, { restart: restarted.ms });
    restarts[primary.id] = restarted;
    log(`[heavy] ${group.name} restart ${JSON.stringify(roundAll(restarted))}`);
  }
  await group.producer.call("reset");
}

async function runDelayed(systems: readonly SystemHandle[], group: Group): Promise<void> {
  const delayedSystems = list.find((s) => s.id === "delayed-large")?.systems ?? [];
  const members = systems.filter((s) => s.group === group && delayedSystems.includes(s.id));
  if (members.length === 0) return;
  // The baseline at the same point of the run (the same log, after the same heavy rows), so the next row's ratio
  // measures the delayed items and nothing else.
  for (const system of members) {
    const options = { count: counts.depthItems, concurrency: 100, remaining: 0 };
    record("delayed-none", system.id, { rate: (await lifecycleRate(system, options)).rate });
  }
  const fillStart = performance.now();
  const fill = { count: counts.depthLarge, batchSize: 1000, inFlight: 4, delayMs: DELAYED_DUE_MS };
  await group.producer.call("enqueue", fill);
  log(`[heavy] ${group.name} filled ${counts.depthLarge} delayed in ${Math.round(performance.now() - fillStart)} ms`);
  for (const system of members) {
    const options = { count: counts.depthItems, concurrency: 100, remaining: counts.depthLarge };
    record("delayed-large", system.id, { rate: (await lifecycleRate(system, options)).rate });
  }
}

function record(scenario: string, system: SystemId, values: Record<string, number>): void {
  addSample(samples, { scenario, system, values });
  log(`[heavy] ${scenario} ${system} ${JSON.stringify(roundAll(values))}`);
}

function roundAll(v: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, typeof x === "number" ? Math.round(x * 100) / 100 : x]),
  );
}

let groups: Group[] = [];
let exitCode = 0;
const started = Date.now();
try {
  const fair = list.some((s) => s.systems.includes("omnirelay-fair"));
  const started = await startSystems({ dir, adminUrl, database, without, durability, jetstream, fair });
  groups = started.groups;
  await runLight(started.systems);
  await runHeavy(started.systems, groups);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await stopAll(groups);
  await dropDatabase(adminUrl, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
if (exitCode === 0) {
  const results = summarize(list, samples);
  const cpu = cpus();
  const machine = {
    cores: cpu.length,
    cpu: cpu[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  const run = {
    mode: quick ? "quick" : "full",
    repetitions: reps,
    warmupRepetitions: warmup,
    durability,
    log: jetstream ? { kinds: ["sqlite", "jetstream"], natsUrl: jetstream, replicas: 1 } : { kinds: ["sqlite"] },
    without,
    only,
    counts,
    durationMs: Date.now() - started,
  };
  writeFileSync(out, `${JSON.stringify({ machine, run, scenarios: results, restarts }, null, 2)}\n`);
  console.log(
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${run.mode} run, ${reps} repetition(s) after ${warmup} warm-up, medians, OmniRelay durability '${durability}'\n`,
  );
  console.log(markdownTable(results));
  console.log(`\nwritten ${out}`);
}
process.exit(exitCode);
