/**
 * OmniRelay processes of the benchmark: `dispatcher` (a durable SQLite queue served over HTTP or gRPC), `producer`
 * (enqueues through a ResourceLeaseClient) and `consumer` (a ResourceLeaseWorker, or a raw lease/completeMany loop).
 */

import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseItemPayload,
  type ResourceLeaseOwnershipToken,
  ResourceLeaseWorker,
  type UnaryOutbound,
} from "@omnirelay/core";
import { openDurableResourceLeaseQueue } from "@omnirelay/replicator-sqlite";
import {
  type ConsumeControl,
  childConfig,
  consumeCommands,
  type ItemOptions,
  itemOptions,
  jobData,
  measured,
  paced,
  pipelined,
  serve,
} from "../lib/child.js";
import { nowMs, percentile } from "../lib/stats.js";
import type { OmniDurability } from "../lib/systems.js";

interface Config {
  readonly role: "dispatcher" | "producer" | "consumer";
  readonly transport: "http" | "grpc";
  readonly port: number;
  readonly path?: string;
  readonly durability?: OmniDurability;
  /** The dispatcher's log is this JetStream stream (R1) instead of the SQLite file at `path`. */
  readonly jetstream?: { readonly natsUrl: string; readonly stream: string };
  /** The dispatcher's queue shares grants across the `tenant` attribute's keys (fair sharing, equal weights). */
  readonly fairTenants?: boolean;
}

const config = childConfig<Config>();
// Only what this process serves or calls is loaded: the HTTP dispatcher on a SQLite log, whose restart is timed,
// starts without the gRPC stack or the NATS client (~0.1 s of imports it would not use).
const grpc = config.transport === "grpc" ? await import("@omnirelay/transport-grpc") : undefined;
const loadNats = async () => ({
  ...(await import("@nats-io/jetstream")),
  ...(await import("@nats-io/transport-node")),
  ...(await import("@omnirelay/replicator-jetstream")),
});
/**
 * Items the worker leases ahead of free slots, unless the scenario says (the throughput rows ask for 500: as many as
 * graphile-worker's batched run holds in its localQueue). The latency rows keep 100: what is leased ahead of a new
 * item is what it waits behind.
 */
const WORKER_PREFETCH = 100;
const MAX_BYTES = 64 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function payload(i: number, o: ItemOptions = {}): ResourceLeaseItemPayload {
  return {
    resourceType: "job",
    resourceId: String(i),
    partitionKey: `p${i % 16}`,
    payloadEncoding: "json",
    body: encoder.encode(JSON.stringify(jobData(nowMs(), o.tenant))),
    ...(o.tenant !== undefined ? { attributes: { tenant: o.tenant } } : {}),
    ...(o.delayMs !== undefined ? { delayMs: o.delayMs } : {}),
  };
}

function outbound(): UnaryOutbound & { close?: () => Promise<void> } {
  return config.transport === "http"
    ? new HttpOutbound({ url: `http://127.0.0.1:${config.port}` })
    : new (required(grpc).GrpcOutbound)({ address: `127.0.0.1:${config.port}`, maxMessageBytes: MAX_BYTES });
}

const QUEUE_OPTIONS = {
  capacity: 4_000_000,
  leaseDurationMs: 60_000,
  maxBatchSize: 1000,
  ...(config.fairTenants ? { keys: { by: { attribute: "tenant" }, fair: true } as const } : {}),
};

/** The queue over the configured log: what the dispatcher serves. */
async function openLog() {
  const js = config.jetstream;
  if (js) {
    const { openJetStreamResourceLeaseQueue } = await loadNats();
    const opened = await openJetStreamResourceLeaseQueue({
      log: { servers: js.natsUrl, shard: "bench", stream: js.stream, subjectPrefix: js.stream, replicas: 1 },
      snapshotBucket: `${js.stream}_SNAPSHOTS`,
      queueOptions: QUEUE_OPTIONS,
    });
    return { queue: opened.queue, replayedEvents: opened.replayedEvents, close: () => opened.close() };
  }
  if (!config.path) throw new Error("dispatcher needs a path");
  return openDurableResourceLeaseQueue({
    path: config.path,
    queueOptions: QUEUE_OPTIONS,
    // BENCH_WRITER_THREAD=off: the SQLite log writes on the event loop (the A/B of issue 16's first lever).
    replicatorOptions: {
      durability: config.durability ?? "batched",
      ...(process.env.BENCH_WRITER_THREAD === "off" ? { writerThread: false } : {}),
    },
  });
}

/** Deletes the run's stream and snapshot bucket (a KV bucket is the stream `KV_<bucket>`). */
async function dropJetStreamLog(js: { natsUrl: string; stream: string }): Promise<void> {
  const { connect, jetstreamManager } = await loadNats();
  const nc = await connect({ servers: js.natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of [js.stream, `KV_${js.stream}_SNAPSHOTS`]) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

async function dispatcherRole(): Promise<void> {
  const durable = await openLog();
  const dispatcher = new Dispatcher({ service: "bench" });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, { queue: durable.queue });
  const inbound =
    config.transport === "http"
      ? new HttpInbound({ dispatcher, port: config.port, maxBodyBytes: MAX_BYTES })
      : new (required(grpc).GrpcInbound)({
          dispatcher,
          port: config.port,
          maxMessageBytes: MAX_BYTES,
          shutdownGraceMs: 1000,
        });
  await inbound.start();
  serve(
    { replayedEvents: durable.replayedEvents, lastEventSequence: durable.queue.stats().lastEventSequence },
    {
      rss: async () => ({ rss: process.memoryUsage().rss, stats: durable.queue.stats() }),
      dropLog: async () => {
        if (!config.jetstream) return {};
        await inbound.close().catch(() => undefined);
        await component.close().catch(() => undefined);
        await durable.close().catch(() => undefined);
        await dropJetStreamLog(config.jetstream);
        return {};
      },
    },
    async () => {
      await inbound.close().catch(() => undefined);
      await component.close().catch(() => undefined);
      await durable.close().catch(() => undefined);
    },
  );
}

async function producerRole(): Promise<void> {
  // Single enqueues of the same turn share one RPC (what ioredis's pipelining does for BullMQ's adds).
  const client = new ResourceLeaseClient({ outbound: outbound(), caller: "producer", coalesceEnqueues: 100 });
  serve(
    {},
    {
      enqueue: async (a) => {
        const count = a.count as number;
        const batchSize = a.batchSize as number;
        const inFlight = a.inFlight as number;
        const o = itemOptions(a);
        const start = performance.now();
        if (batchSize <= 1) {
          await pipelined(count, inFlight, (i) => client.enqueue(payload(i, o)));
        } else {
          const batches = Math.ceil(count / batchSize);
          await pipelined(batches, inFlight, (b) => {
            const n = Math.min(batchSize, count - b * batchSize);
            return client.enqueueMany(Array.from({ length: n }, (_, k) => payload(b * batchSize + k, o)));
          });
        }
        return { ms: performance.now() - start };
      },
      paced: async (a) => {
        const o = itemOptions(a);
        // BENCH_TRACE_ACKS=1: print the enqueue's own round trip (sent → acknowledged, so committed), which splits
        // the latency rows' enqueue → handler start into the enqueue and the delivery. Off, nothing is timed.
        const trace = process.env.BENCH_TRACE_ACKS === "1";
        const acks: number[] = [];
        await paced(a.count as number, a.ratePerSec as number, (i) => {
          if (!trace) return client.enqueue(payload(i, o));
          const sent = nowMs();
          return client.enqueue(payload(i, o)).then(() => acks.push(nowMs() - sent));
        });
        if (trace) {
          const [p50, p90, p99] = [50, 90, 99].map((p) => percentile(acks, p).toFixed(2));
          process.stderr.write(`[acks] enqueue round trip p50 ${p50} p90 ${p90} p99 ${p99} ms (${acks.length})\n`);
        }
        return {};
      },
      reset: async () => {
        for (;;) {
          const grants = await client.lease({ maxItems: 1000, waitMs: 0 });
          if (grants.length === 0) break;
          await client.completeMany(grants.map((g) => g.ownershipToken));
        }
        const stats = await client.stats();
        return { pending: stats.pendingCount, active: stats.activeLeaseCount };
      },
    },
    () => client.close(),
  );
}

async function consumeWithWorker(
  client: ResourceLeaseClient,
  a: Record<string, unknown>,
  control: ConsumeControl,
): Promise<unknown> {
  const count = a.count as number;
  const latencies: number[] = [];
  const start = performance.now();
  const worker = new ResourceLeaseWorker({
    client,
    peerId: `bench-worker-${process.pid}`,
    concurrency: a.concurrency as number,
    prefetch: typeof a.prefetch === "number" ? a.prefetch : WORKER_PREFETCH,
    leaseWaitMs: 2000,
    // A session stream unless the system forces the unary verbs (`omnirelay-http-unary`).
    session: a.session !== false,
    handler: (item) => {
      if (a.latency && item.payload.body) {
        const data = JSON.parse(decoder.decode(item.payload.body)) as { t: number; tenant?: string };
        if (!measured(a, data)) return;
        const ms = nowMs() - data.t;
        latencies.push(ms);
        if (ms > 1000)
          process.stderr.write(`[stale] seq ${item.sequenceId} attempt ${item.attempt} ${Math.round(ms)} ms\n`);
      }
    },
  }).start();
  control.started();
  let doneAt: number;
  if (a.shared) {
    // One of several worker processes: run until the parent has seen every item completed.
    let ended = false;
    void control.ended.then(() => {
      ended = true;
    });
    while (!ended) {
      control.progress(worker.stats().completed);
      await new Promise((r) => setTimeout(r, 1));
    }
    control.progress(worker.stats().completed);
    doneAt = control.lastAt();
  } else {
    while (worker.stats().completed < count) await new Promise((r) => setTimeout(r, 1));
    doneAt = nowMs(); // before closing: a lifecycle ends at its last completion
  }
  const ms = performance.now() - start;
  await worker.close();
  return { ms, doneAt, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function consumeRaw(
  client: ResourceLeaseClient,
  a: Record<string, unknown>,
  control: ConsumeControl,
): Promise<unknown> {
  const shared = a.shared === true;
  // Shared (one of several processes): no count of its own; it leases until the parent ends the run.
  const count = shared ? Number.POSITIVE_INFINITY : (a.count as number);
  const concurrency = a.concurrency as number;
  const start = performance.now();
  const stop = new AbortController();
  void control.ended.then(() => stop.abort());
  let leased = 0;
  let completed = 0;
  const completing = new Set<Promise<unknown>>();
  control.started();
  while (leased < count && !stop.signal.aborted) {
    const grants = await client
      .lease(
        { peerId: `bench-raw-${process.pid}`, maxItems: Math.min(concurrency, count - leased), waitMs: 2000 },
        { signal: stop.signal },
      )
      .catch((error: unknown) => {
        if (stop.signal.aborted) return [];
        throw error;
      });
    if (grants.length === 0) continue;
    leased += grants.length;
    // The no-op handlers, run concurrently, then one completeMany for the batch (sent while the next lease goes out).
    await Promise.all(grants.map(async () => undefined));
    const tokens: ResourceLeaseOwnershipToken[] = grants.map((g) => g.ownershipToken);
    const p: Promise<unknown> = client
      .completeMany(tokens)
      .then(() => {
        completed += tokens.length;
        control.progress(completed);
      })
      .finally(() => completing.delete(p));
    completing.add(p);
    if (completing.size >= 2) await Promise.race(completing);
  }
  await Promise.all(completing);
  return { ms: performance.now() - start, doneAt: shared ? control.lastAt() : nowMs() };
}

async function consumerRole(): Promise<void> {
  const client = new ResourceLeaseClient({ outbound: outbound(), caller: "consumer" });
  serve(
    {},
    consumeCommands((a, control) =>
      a.mode === "raw" ? consumeRaw(client, a, control) : consumeWithWorker(client, a, control),
    ),
    () => client.close(),
  );
}

const roles = { dispatcher: dispatcherRole, producer: producerRole, consumer: consumerRole };
await roles[config.role]();

/** The module loaded for this process's transport (always there when the transport needs it). */
function required<T>(module: T | undefined): T {
  if (module === undefined) throw new Error("the gRPC transport was not loaded");
  return module;
}
