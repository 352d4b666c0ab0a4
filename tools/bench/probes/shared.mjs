// What the probes share: the benchmark's job payload, the queue options, the dispatcher's queue (SQLite log or in
// memory) and the probe's own child process that serves it. Imports no OmniRelay package itself, so a probe can load
// another build's core and still use it.
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import inspector from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The benchmark's queue options: room for its heavy rows, leases that outlast any run. */
export const QUEUE = { capacity: 4_000_000, leaseDurationMs: 60_000, maxBatchSize: 1000 };

/** User plus system CPU of a `process.cpuUsage()` reading, in µs. */
export const cpuMicros = (u) => u.user + u.system;

/** Item `i`'s payload as the benchmark enqueues it: 16 partitions, `body` as given. */
export function jobPayload(i, body) {
  return { resourceType: "job", resourceId: String(i), partitionKey: `p${i % 16}`, payloadEncoding: "json", body };
}

/**
 * Enqueues `count` items on `queue` in batches of 1,000, item `i` being `payload(i)` (by default the job payload with
 * a 200-byte body).
 */
export async function fillQueue(queue, count, payload = (i) => jobPayload(i, new Uint8Array(200).fill(65))) {
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    await queue.enqueueMany(Array.from({ length: n }, (_, k) => payload(i + k)));
  }
}

const encoder = new TextEncoder();

/** A ~170-byte JSON body carrying its enqueue time, as the benchmark's producer sends. */
export function jsonBody() {
  return encoder.encode(JSON.stringify({ t: Date.now(), pad: "x".repeat(150) }));
}

/**
 * The dispatcher's queue: in memory, or durable on a SQLite log in the probe's directory (`PROBE_DIR`). Resolves to
 * the queue and its close.
 */
export async function openProbeQueue(core, log, replicatorOptions = {}) {
  if (log === "memory") return { queue: new core.ResourceLeaseQueue(QUEUE), close: async () => undefined };
  const { openDurableResourceLeaseQueue } = await import("@omnirelay/replicator-sqlite");
  const durable = await openDurableResourceLeaseQueue({
    path: join(process.env.PROBE_DIR ?? tmpdir(), "queue.db"),
    queueOptions: QUEUE,
    replicatorOptions,
  });
  return { queue: durable.queue, replicator: durable.replicator, close: () => durable.close() };
}

/**
 * Forks the calling probe (`moduleUrl`, its `import.meta.url`) with its own arguments plus `--serve <port>`, in a
 * fresh directory. `reply()` waits for the child's next message (the first is its "ready"); `end()` sends it "exit",
 * waits for it to go and removes the directory.
 */
export function forkServer(moduleUrl) {
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-probe-"));
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  const child = fork(new URL(moduleUrl).pathname, [...process.argv.slice(2), "--serve", String(port)], {
    env: { ...process.env, PROBE_DIR: dir },
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    port,
    child,
    reply: () => new Promise((resolve) => child.once("message", resolve)),
    async end() {
      child.send("exit");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a V8 profile of this process: `cpu` (sampled stacks) or `heap` (sampled allocations, collected objects
 * included). Resolves to the session {@link stopProfile} takes.
 */
export async function startProfile(kind) {
  const session = new inspector.Session();
  session.connect();
  if (kind === "cpu") {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  } else {
    await session.post("HeapProfiler.enable");
    await session.post("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  return session;
}

/** Stops the profile {@link startProfile} started and resolves to it; with PROFILE_OUT=<file> also writes it there. */
export async function stopProfile(session, kind) {
  const { profile } = await session.post(kind === "cpu" ? "Profiler.stop" : "HeapProfiler.stopSampling");
  session.disconnect();
  if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));
  return profile;
}
