/** The systems under test, as the parent sees them: groups of child processes and the systems that share them. */
import { join } from "node:path";
import { createDatabase, freePort, PrivateRedis, pidsNamed, rssOf } from "./infra.js";
import { type Child, startChild } from "./proc.js";

/** Ids of the systems, in table order. */
export const SYSTEM_IDS = [
  "omnirelay-http",
  "omnirelay-http-unary",
  "omnirelay-http-raw",
  "omnirelay-grpc",
  "omnirelay-jetstream",
  "omnirelay-fair",
  "bullmq",
  "graphile",
  "graphile-batched",
] as const;
/** A system id. */
export type SystemId = (typeof SYSTEM_IDS)[number];

/** Human labels of the systems. */
export const SYSTEM_LABELS: Record<SystemId, string> = {
  "omnirelay-http": "OmniRelay HTTP (worker)",
  "omnirelay-http-unary": "OmniRelay HTTP (worker, unary)",
  "omnirelay-http-raw": "OmniRelay HTTP (raw client)",
  "omnirelay-grpc": "OmniRelay gRPC (worker)",
  "omnirelay-jetstream": "OmniRelay HTTP (worker), JetStream R1 log",
  "omnirelay-fair": "OmniRelay HTTP (worker), fair keys by tenant",
  bullmq: "BullMQ 6.7",
  graphile: "graphile-worker 0.17",
  "graphile-batched": "graphile-worker 0.17 batched",
};

/** SQLite durability modes the OmniRelay dispatchers can run with (`--durability`). */
export const OMNI_DURABILITIES = ["batched", "process-safe"] as const;
/** One of {@link OMNI_DURABILITIES}. */
export type OmniDurability = (typeof OMNI_DURABILITIES)[number];

/** Peers (everything that is not OmniRelay). */
export const PEERS: readonly SystemId[] = ["bullmq", "graphile", "graphile-batched"];

/** Processes shared by one or more systems. */
export interface Group {
  readonly name: string;
  producer: Child;
  consumer: Child;
  /** `n` consumer processes: `consumer` and `n - 1` more, started on first use and kept until `stop`. */
  consumers(n: number): Promise<Child[]>;
  /**
   * Every process the system runs on right now, for its CPU per item: the producer, the consumers started so far and
   * what holds the queue (the dispatcher, redis-server, or the machine's PostgreSQL backends, which serve only the
   * benchmark while it runs).
   */
  pids(): number[];
  /** Resident memory of the process that holds the queue (dispatcher or redis-server). */
  serverRss(): Promise<number | undefined>;
  /** Restarts the process that holds the queue; resolves with ms from process start to serving. */
  restart(): Promise<{ ms: number; events?: number; replayedEvents?: number } | undefined>;
  stop(): Promise<void>;
}

/** A system: a group plus the extra arguments of its consume commands. */
export interface SystemHandle {
  readonly id: SystemId;
  readonly group: Group;
  readonly consumeArgs: Record<string, unknown>;
}

/** `consumers` of a group: the first consumer plus more made by `start` on demand; `stop` stops the extra ones. */
function consumerPool(first: Child, start: () => Promise<Child>) {
  const extra: Child[] = [];
  return {
    async consumers(n: number): Promise<Child[]> {
      const missing = Math.max(0, n - 1 - extra.length);
      const started = await Promise.allSettled(Array.from({ length: missing }, start));
      for (const r of started) if (r.status === "fulfilled") extra.push(r.value); // stopped with the group
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      return [first, ...extra.slice(0, n - 1)];
    },
    stopExtra: () => Promise.all(extra.map((c) => c.stop())),
    /** Pids of the consumers started so far. */
    pids: () => pidsOf(first, ...extra),
  };
}

/** The pids of `children` that have one. */
function pidsOf(...children: Child[]): number[] {
  return children.flatMap((c) => (c.proc.pid === undefined ? [] : [c.proc.pid]));
}

/** Where an OmniRelay group's dispatcher keeps its log: a SQLite file (default) or a JetStream stream of its own. */
export type OmniLog = { readonly kind: "sqlite" } | { readonly kind: "jetstream"; readonly natsUrl: string };

/**
 * The OmniRelay group over `transport` (system `omnirelay-<transport>`, or `omnirelay-jetstream` for a JetStream
 * log): a dispatcher, a producer and a consumer.
 */
async function omniGroup(
  transport: "http" | "grpc",
  options: { dir: string; durability: OmniDurability; log?: OmniLog; fairTenants?: boolean },
): Promise<Group> {
  const { dir, durability } = options;
  const log = options.log ?? { kind: "sqlite" };
  const fairTenants = options.fairTenants === true;
  const name =
    log.kind === "jetstream" ? "omnirelay-jetstream" : fairTenants ? "omnirelay-fair" : `omnirelay-${transport}`;
  const port = await freePort();
  const path = join(dir, `${name}.db`);
  // A stream and snapshot bucket named after this run, deleted when the group stops.
  const jetstream =
    log.kind === "jetstream" ? { natsUrl: log.natsUrl, stream: `OMNIBENCH_${process.pid}_${port}` } : undefined;
  // BENCH_CPU_PROF=<dir>: the OmniRelay processes write V8 CPU profiles there (node --cpu-prof), for finding hot paths.
  const prof = process.env.BENCH_CPU_PROF;
  const execArgv = prof ? ["--cpu-prof", "--cpu-prof-dir", prof] : [];
  const startDispatcher = () =>
    startChild(
      "omnirelay",
      { role: "dispatcher", transport, port, path, durability, jetstream, fairTenants },
      { execArgv },
    );
  let dispatcher = await startDispatcher();
  const startConsumer = () => startChild("omnirelay", { role: "consumer", transport, port }, { execArgv });
  const [producer, consumer] = await Promise.all([
    startChild("omnirelay", { role: "producer", transport, port }, { execArgv }),
    startConsumer(),
  ]);
  const pool = consumerPool(consumer, startConsumer);
  return {
    name,
    producer,
    consumer,
    consumers: pool.consumers,
    // A JetStream log's server is the machine's NATS, which serves only the benchmark while it runs.
    pids: () => [...pidsOf(dispatcher, producer), ...pool.pids(), ...(jetstream ? pidsNamed("nats-server") : [])],
    serverRss: async () => (await dispatcher.call<{ rss: number }>("rss")).rss,
    async restart() {
      await dispatcher.stop();
      const started = performance.now();
      dispatcher = await startDispatcher();
      const ms = performance.now() - started;
      return {
        ms,
        events: dispatcher.ready.lastEventSequence as number,
        replayedEvents: dispatcher.ready.replayedEvents as number,
      };
    },
    async stop() {
      await Promise.all([producer.stop(), consumer.stop(), pool.stopExtra()]);
      if (jetstream) await dispatcher.call("dropLog").catch(() => undefined);
      await dispatcher.stop();
    },
  };
}

async function bullGroup(dir: string): Promise<Group> {
  const port = await freePort();
  const redis = new PrivateRedis(port, dir);
  await redis.start();
  const startConsumer = () => startChild("bullmq", { role: "consumer", port });
  const [producer, consumer] = await Promise.all([startChild("bullmq", { role: "producer", port }), startConsumer()]);
  const pool = consumerPool(consumer, startConsumer);
  return {
    name: "bullmq",
    producer,
    consumer,
    consumers: pool.consumers,
    pids: () => [...pidsOf(producer), ...pool.pids(), ...(redis.pid === undefined ? [] : [redis.pid])],
    serverRss: async () => rssOf(redis.pid),
    async restart() {
      await redis.stop();
      return { ms: await redis.start() };
    },
    async stop() {
      await Promise.all([producer.stop(), consumer.stop(), pool.stopExtra()]);
      await redis.stop();
    },
  };
}

async function graphileGroup(adminUrl: string, database: string): Promise<Group> {
  const connectionString = await createDatabase(adminUrl, database);
  const producer = await startChild("graphile", { role: "producer", connectionString }); // runs the migrations
  const startConsumer = () => startChild("graphile", { role: "consumer", connectionString });
  const consumer = await startConsumer();
  const pool = consumerPool(consumer, startConsumer);
  return {
    name: "graphile",
    producer,
    consumer,
    consumers: pool.consumers,
    pids: () => [...pidsOf(producer), ...pool.pids(), ...pidsNamed("postgres")],
    serverRss: async () => undefined,
    restart: async () => undefined,
    async stop() {
      await Promise.all([producer.stop(), consumer.stop(), pool.stopExtra()]);
    },
  };
}

/** Starts every group; `stopAll` stops them (never throws). */
export async function startSystems(options: {
  dir: string;
  adminUrl: string;
  database: string;
  /** Systems not to start. */
  without: readonly SystemId[];
  /** The OmniRelay dispatchers' SQLite durability mode. */
  durability: OmniDurability;
  /** NATS server URL: also start `omnirelay-jetstream`, a dispatcher whose log is a JetStream stream (R1). */
  jetstream?: string;
  /** Also start `omnirelay-fair`: a dispatcher whose queue shares grants fairly across tenants (the tenant rows). */
  fair?: boolean;
}): Promise<{ systems: SystemHandle[]; groups: Group[] }> {
  const groups: Group[] = [];
  try {
    const http = await omniGroup("http", options);
    groups.push(http);
    const grpc = await omniGroup("grpc", options);
    groups.push(grpc);
    const js = options.jetstream
      ? await omniGroup("http", { ...options, log: { kind: "jetstream", natsUrl: options.jetstream } })
      : undefined;
    if (js) groups.push(js);
    const fair = options.fair ? await omniGroup("http", { ...options, fairTenants: true }) : undefined;
    if (fair) groups.push(fair);
    const bull = options.without.includes("bullmq") ? undefined : await bullGroup(options.dir);
    if (bull) groups.push(bull);
    const gw = await graphileGroup(options.adminUrl, options.database);
    groups.push(gw);
    const systems: SystemHandle[] = [
      // The worker holds a session stream by default; the unary row forces one request per lease and settlement.
      { id: "omnirelay-http", group: http, consumeArgs: { mode: "worker" } },
      { id: "omnirelay-http-unary", group: http, consumeArgs: { mode: "worker", session: false } },
      { id: "omnirelay-http-raw", group: http, consumeArgs: { mode: "raw" } },
      { id: "omnirelay-grpc", group: grpc, consumeArgs: { mode: "worker" } },
      ...(js ? [{ id: "omnirelay-jetstream" as const, group: js, consumeArgs: { mode: "worker" } }] : []),
      ...(fair ? [{ id: "omnirelay-fair" as const, group: fair, consumeArgs: { mode: "worker" } }] : []),
      ...(bull ? [{ id: "bullmq" as const, group: bull, consumeArgs: {} }] : []),
      { id: "graphile", group: gw, consumeArgs: { batching: false } },
      { id: "graphile-batched", group: gw, consumeArgs: { batching: true } },
    ];
    return { systems, groups };
  } catch (error) {
    await stopAll(groups);
    throw error;
  }
}

/** Stops groups, ignoring errors. */
export async function stopAll(groups: readonly Group[]): Promise<void> {
  await Promise.all(groups.map((g) => g.stop().catch(() => undefined)));
}
