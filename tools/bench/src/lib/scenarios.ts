/** The scenarios: what each one runs against one system, and the item counts of the quick and full modes. */
import { BULK_TENANT, SMALL_TENANT } from "./child.js";
import { cpuMicrosOf } from "./infra.js";
import { nowMs } from "./stats.js";
import type { SystemHandle, SystemId } from "./systems.js";

/** Item counts of a run. */
export interface Counts {
  readonly enqueueSingle: number;
  readonly enqueueBatch: number;
  readonly lifecycle: Readonly<Record<1 | 10 | 100, number>>;
  /** Items of the lifecycle with four worker processes at concurrency 25 each. */
  readonly lifecycleProcesses: number;
  readonly latencyItems: number;
  /** Items moved through the lifecycle in the depth scenarios. */
  readonly depthItems: number;
  readonly depthSmall: number;
  readonly depthLarge: number;
  /** Items the large tenant enqueues at once in the tenant rows. */
  readonly tenantFlood: number;
  /** Items the small tenant enqueues one at a time (at {@link SMALL_TENANT_RATE}/s) while the flood is consumed. */
  readonly tenantSmall: number;
}

/** Items per second of the small tenant in the tenant rows. */
export const SMALL_TENANT_RATE = 50;
/** How far in the future the delayed items of the `delayed-large` row are due (an hour: none is due in the run). */
export const DELAYED_DUE_MS = 3_600_000;

/** `--quick`: small counts, one repetition, the heavy scenarios with a small depth (they still run end to end). */
export const QUICK_COUNTS: Counts = {
  enqueueSingle: 1000,
  enqueueBatch: 5000,
  lifecycle: { 1: 300, 10: 1000, 100: 2000 },
  lifecycleProcesses: 2000,
  latencyItems: 300,
  depthItems: 1000,
  depthSmall: 1000,
  depthLarge: 5000,
  tenantFlood: 3000,
  tenantSmall: 25,
};

/** The full run. */
export const FULL_COUNTS: Counts = {
  enqueueSingle: 20_000,
  enqueueBatch: 100_000,
  lifecycle: { 1: 3000, 10: 20_000, 100: 30_000 },
  lifecycleProcesses: 30_000,
  latencyItems: 5000,
  depthItems: 20_000,
  depthSmall: 1000,
  depthLarge: 1_000_000,
  tenantFlood: 100_000,
  tenantSmall: 100,
};

/** One measured quantity of a scenario. */
export interface Metric {
  readonly key: string;
  readonly unit: "items/s" | "ms" | "MiB" | "µs";
  readonly higherIsBetter: boolean;
  /** How the report names the metric's row after the scenario's title (default: its key). */
  readonly label?: string;
}

/** A scenario: its systems and metrics; `run` is absent for the heavy ones (run per group by the harness). */
export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly systems: readonly SystemId[];
  readonly metrics: readonly Metric[];
  readonly run?: (system: SystemHandle, counts: Counts) => Promise<Record<string, number>>;
}

const RATE: Metric[] = [{ key: "rate", unit: "items/s", higherIsBetter: true }];
/**
 * The lifecycle rows' metrics: the rate, and the CPU time every process of the system spent per item while the row
 * ran (user + system, all threads; PostgreSQL's and Redis's servers included). A rate on a busy two-core machine swings
 * with the neighbours; the CPU an item costs swings much less, and says what a rate could at most become.
 */
const LIFECYCLE: Metric[] = [
  { key: "rate", unit: "items/s", higherIsBetter: true, label: "rate" },
  { key: "cpu", unit: "µs", higherIsBetter: false, label: "CPU per item, every process of the system" },
];

/** Starts counting the CPU time of `s`'s processes; the returned function gives µs per item of `count`. */
function cpuMeter(s: SystemHandle): (count: number) => number {
  const before = new Map(s.group.pids().map((pid) => [pid, cpuMicrosOf(pid)]));
  return (count) => {
    let spent = 0;
    // A process started meanwhile (a PostgreSQL backend) counts from 0; one gone meanwhile is lost (under-counted):
    // counting it as 0 now subtracted all its earlier time, and a graphile-worker row came out at -836 µs per item.
    // A process's CPU time never falls, so a pid reused meanwhile adds nothing either.
    for (const pid of new Set([...before.keys(), ...s.group.pids()])) {
      const now = cpuMicrosOf(pid);
      if (now !== undefined) spent += Math.max(0, now - (before.get(pid) ?? 0));
    }
    return spent / count;
  };
}
const ENQUEUERS: SystemId[] = ["omnirelay-http", "omnirelay-grpc", "bullmq", "graphile"];
const ALL: SystemId[] = [
  "omnirelay-http",
  "omnirelay-http-unary",
  "omnirelay-http-raw",
  "omnirelay-grpc",
  "bullmq",
  "graphile",
  "graphile-batched",
];
/** `list` plus the JetStream-log dispatcher after the SQLite ones (its rows run only with `--log jetstream`). */
const withJetStream = (list: readonly SystemId[]): SystemId[] => [
  ...list.filter((id) => id.startsWith("omnirelay-")),
  "omnirelay-jetstream",
  ...list.filter((id) => !id.startsWith("omnirelay-")),
];
/** The tenant rows: the fair-sharing dispatcher, the plain one (FIFO, for contrast) and the peers' priorities. */
const TENANTS: SystemId[] = ["omnirelay-fair", "omnirelay-http", "bullmq", "graphile-batched"];
/** The delayed-items row (run per group after the heavy rows: OmniRelay's reset leaves delayed items in place). */
export const DELAYED: SystemId[] = ["omnirelay-http", "bullmq", "graphile-batched"];
const DEPTH: SystemId[] = ["omnirelay-http", "omnirelay-http-raw", "bullmq", "graphile", "graphile-batched"];
/**
 * The OmniRelay worker's `prefetch` in the throughput rows (every lifecycle): graphile-worker batched's `localQueue`
 * size, its counterpart. The latency rows keep the worker's 100 (see `workers/omnirelay.ts`).
 */
const THROUGHPUT_PREFETCH = 500;
/** Producer side of the lifecycle scenarios: batches of 100, two in flight. */
const LIFECYCLE_PRODUCER = { batchSize: 100, inFlight: 2 };

/** Enqueues `count` items in batches of `batchSize`, `inFlight` calls at a time; the rate in items/s. */
async function enqueueRate(
  s: SystemHandle,
  options: { count: number; batchSize: number; inFlight: number },
): Promise<Record<string, number>> {
  const { count, batchSize, inFlight } = options;
  const r = await s.group.producer.call<{ ms: number }>("enqueue", { count, batchSize, inFlight });
  await reset(s);
  return { rate: (count / r.ms) * 1000 };
}

/** Empties the system's queue; warns when leases are still active (a consumer left items leased). */
async function reset(s: SystemHandle): Promise<void> {
  const r = await s.group.producer.call<{ active?: number }>("reset");
  if (r?.active) process.stderr.write(`[warn] ${s.id}: ${r.active} leases still active after the scenario\n`);
}

/** Enqueue → lease → complete of `count` new items by one consumer process, timed from the first enqueue. */
export async function lifecycleRate(
  s: SystemHandle,
  options: { count: number; concurrency: number; remaining: number },
): Promise<{ rate: number; cpu: number }> {
  await s.group.consumer.call("consumeStart", { ...s.consumeArgs, ...options, prefetch: THROUGHPUT_PREFETCH });
  const cpu = cpuMeter(s);
  const started = nowMs();
  await s.group.producer.call("enqueue", { count: options.count, ...LIFECYCLE_PRODUCER });
  // Until the consumer's last acknowledged completion (its clock: nowMs is comparable across processes), not until
  // it has closed: closing is not part of the lifecycle.
  const { doneAt } = await s.group.consumer.call<{ doneAt: number }>("consumeWait");
  return { rate: (options.count / (doneAt - started)) * 1000, cpu: cpu(options.count) };
}

/** Worker processes of the `lifecycle-4x25` scenario and the concurrency of each. */
export const PROCESSES = { processes: 4, concurrency: 25 } as const;

/**
 * Enqueue → lease → complete of `count` new items by `processes` consumer processes sharing the queue, timed from
 * the first enqueue to the last acknowledged completion of any of them. No consumer knows the total: each reports
 * its completions (polled every 2 ms) and runs until the parent has seen them all; each reports the time of its own
 * last completion (graphile-worker: when it saw the jobs table drained, after being told).
 */
export async function lifecycleRateShared(
  s: SystemHandle,
  options: { count: number; concurrency: number; processes: number },
): Promise<{ rate: number; cpu: number; processesUsed: number }> {
  const { count, concurrency, processes } = options;
  const consumers = await s.group.consumers(processes);
  const args = {
    ...s.consumeArgs,
    count,
    concurrency,
    processes,
    remaining: 0,
    shared: true,
    prefetch: THROUGHPUT_PREFETCH,
  };
  await Promise.all(consumers.map((c) => c.call("consumeStart", args)));
  const cpu = cpuMeter(s);
  const started = nowMs();
  const enqueued = s.group.producer.call("enqueue", { count, ...LIFECYCLE_PRODUCER });
  let seen = 0;
  let progressAt = nowMs();
  let each: number[] = [];
  while (seen < count) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const p = await Promise.all(consumers.map((c) => c.call<{ completed: number }>("consumeProgress")));
    each = p.map((x) => x.completed);
    const total = each.reduce((sum, n) => sum + n, 0);
    if (total > seen) progressAt = nowMs();
    else if (nowMs() - progressAt > 60_000) throw new Error(`${s.id}: stuck at ${total} of ${count} completions`);
    seen = total;
  }
  await enqueued;
  await Promise.all(consumers.map((c) => c.call("consumeEnd")));
  const results = await Promise.all(consumers.map((c) => c.call<{ doneAt: number }>("consumeWait")));
  const doneAt = Math.max(...results.map((r) => r.doneAt));
  // Logged with the rate (not a metric): how many processes completed items, so a run that one process did alone shows.
  const rate = (count / (doneAt - started)) * 1000;
  return { rate, cpu: cpu(count), processesUsed: each.filter((n) => n > 0).length };
}

function lifecycle(concurrency: 1 | 10 | 100, systems: readonly SystemId[] = ALL): Scenario {
  return {
    id: `lifecycle-c${concurrency}`,
    title: `Lifecycle, one worker process at concurrency ${concurrency}`,
    systems,
    metrics: LIFECYCLE,
    run: async (s, c) => {
      const r = await lifecycleRate(s, { count: c.lifecycle[concurrency], concurrency, remaining: 0 });
      await reset(s);
      return r;
    },
  };
}

/** Every scenario, in report order. */
export function scenarios(counts: Counts): Scenario[] {
  const large = counts.depthLarge.toLocaleString("en-US");
  return [
    {
      id: "enqueue-single",
      title: "Enqueue, one item per call, 64 in flight",
      systems: ENQUEUERS,
      metrics: RATE,
      run: (s, c) => enqueueRate(s, { count: c.enqueueSingle, batchSize: 1, inFlight: 64 }),
    },
    {
      id: "enqueue-batch",
      title: "Enqueue, batches of 1,000, 4 in flight",
      systems: withJetStream(ENQUEUERS),
      metrics: RATE,
      run: (s, c) => enqueueRate(s, { count: c.enqueueBatch, batchSize: 1000, inFlight: 4 }),
    },
    lifecycle(1),
    lifecycle(10),
    lifecycle(100, withJetStream(ALL)),
    {
      id: "lifecycle-4x25",
      title: "Lifecycle, four worker processes at concurrency 25 each",
      systems: ALL,
      metrics: LIFECYCLE,
      run: async (s, c) => {
        const r = await lifecycleRateShared(s, { count: c.lifecycleProcesses, ...PROCESSES });
        await reset(s);
        return r;
      },
    },
    {
      id: "latency-1000",
      title: "Enqueue → handler start at 1,000 items/s (concurrency 10)",
      systems: ["omnirelay-http", "omnirelay-http-unary", "omnirelay-grpc", "bullmq", "graphile", "graphile-batched"],
      metrics: [
        { key: "p50", unit: "ms", higherIsBetter: false },
        { key: "p99", unit: "ms", higherIsBetter: false },
      ],
      run: async (s, c) => {
        const count = c.latencyItems;
        await s.group.consumer.call("consumeStart", { ...s.consumeArgs, count, concurrency: 10, latency: true });
        await s.group.producer.call("paced", { count, ratePerSec: 1000 });
        const r = await s.group.consumer.call<{ p50: number; p99: number }>("consumeWait");
        await reset(s);
        return { p50: r.p50, p99: r.p99 };
      },
    },
    {
      id: "tenant-latency",
      title: `A small tenant's enqueue → handler start while a large tenant's ${counts.tenantFlood.toLocaleString("en-US")} items are consumed (concurrency 10)`,
      systems: TENANTS,
      metrics: [
        { key: "p50", unit: "ms", higherIsBetter: false },
        { key: "p99", unit: "ms", higherIsBetter: false },
      ],
      run: async (s, c) => {
        const count = c.tenantFlood + c.tenantSmall;
        const args = { ...s.consumeArgs, count, concurrency: 10, latency: true, latencyTenant: SMALL_TENANT };
        await s.group.consumer.call("consumeStart", args);
        await s.group.producer.call("enqueue", {
          count: c.tenantFlood,
          batchSize: 1000,
          inFlight: 2,
          tenant: BULK_TENANT,
        });
        await s.group.producer.call("paced", {
          count: c.tenantSmall,
          ratePerSec: SMALL_TENANT_RATE,
          tenant: SMALL_TENANT,
        });
        const r = await s.group.consumer.call<{ p50: number; p99: number; doneAt: number }>("consumeWait");
        await reset(s);
        return { p50: r.p50, p99: r.p99 };
      },
    },
    {
      id: "depth-small",
      title: `Lifecycle at concurrency 100 with ${counts.depthSmall.toLocaleString("en-US")} items pending`,
      systems: DEPTH,
      metrics: RATE,
      run: async (s, c) => {
        await s.group.producer.call("enqueue", { count: c.depthSmall, batchSize: 1000, inFlight: 1 });
        const { rate } = await lifecycleRate(s, { count: c.depthItems, concurrency: 100, remaining: c.depthSmall });
        await reset(s);
        return { rate };
      },
    },
    {
      id: "depth-large",
      title: `Lifecycle at concurrency 100 with ${large} items pending`,
      systems: DEPTH,
      metrics: RATE,
    },
    {
      id: "delayed-none",
      title:
        "Lifecycle at concurrency 100 just before the delayed fill (the baseline of the next row, same point of the run)",
      systems: DELAYED,
      metrics: RATE,
    },
    {
      id: "delayed-large",
      title: `Lifecycle at concurrency 100 with ${large} delayed items (due in an hour)`,
      systems: DELAYED,
      metrics: RATE,
    },
    {
      id: "rss-large",
      title: `RSS of the queue-holding process with ${large} pending 200-byte items`,
      systems: ["omnirelay-http", "bullmq"],
      metrics: [{ key: "rss", unit: "MiB", higherIsBetter: false }],
    },
    {
      id: "restart-large",
      title: `Restart to serving with ≥ ${large} logged events`,
      systems: ["omnirelay-http", "bullmq"],
      metrics: [{ key: "restart", unit: "ms", higherIsBetter: false }],
    },
  ];
}
