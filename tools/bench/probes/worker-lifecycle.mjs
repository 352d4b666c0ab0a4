// A ResourceLeaseWorker's lifecycle without the rest of the benchmark: a dispatcher in a child process (SQLite log, or
// an in-memory queue) serving HTTP, and here a producer that fills the queue, then a worker that consumes it. Two
// rounds, each with a new worker on the same queue: a warm-up (a quarter of the items, left out of every figure) and
// the measured one. Prints the measured round's rate, each process's CPU per item, how busy each event loop was
// (1 = never waiting: the bottleneck) and the SQLite log's commits per item; with --profile cpu or heap, also the
// worker's (this process's) or, with --profile-of dispatcher, the dispatcher's busiest functions or largest
// allocations during it, per item.
// A round that stalls (the worker is still waiting after --stall-ms) ends the probe with exit code 3: that is how a
// closing worker's session that kept its credit showed, its grants leased to nobody until they expired.
// Usage: node probes/worker-lifecycle.mjs [--log sqlite|memory] [--durability batched|process-safe|…]
//          [--count 40000] [--concurrency 100] [--prefetch 100] [--unary] [--concurrent] [--profile cpu|heap]
//          [--profile-of worker|dispatcher] [--stall-ms 10000]
// --concurrent: the items are enqueued while the worker runs (batches of 100, two in flight, as the benchmark's
// lifecycle rows do) instead of before it starts; the worker's CPU figure then includes the producer's.
// With --profile and PROFILE_OUT=<file>, the raw profile (.cpuprofile or .heapprofile JSON) is written there too.
// Run it after `pnpm build` (it loads the packages' dist).
import { parseArgs } from "node:util";
import { cpuMicros, forkServer, jobPayload, jsonBody, openProbeQueue, startProfile, stopProfile } from "./shared.mjs";

const { values: o } = parseArgs({
  options: {
    log: { type: "string", default: "sqlite" },
    durability: { type: "string", default: "batched" },
    count: { type: "string", default: "40000" },
    concurrency: { type: "string", default: "100" },
    prefetch: { type: "string", default: "100" },
    unary: { type: "boolean", default: false },
    profile: { type: "string" },
    "profile-of": { type: "string", default: "worker" },
    "stall-ms": { type: "string", default: "10000" },
    serve: { type: "string" },
    concurrent: { type: "boolean", default: false },
  },
});
for (const [flag, allowed] of [
  ["log", ["sqlite", "memory"]],
  ["durability", ["batched", "process-safe", "async", "sync"]],
  ["profile", [undefined, "cpu", "heap"]],
  ["profile-of", ["worker", "dispatcher"]],
]) {
  if (!allowed.includes(o[flag])) {
    console.error(`worker-lifecycle: --${flag} ${allowed.filter(Boolean).join("|")}, not ${o[flag]}`);
    process.exit(2);
  }
}

const core = await import("@omnirelay/core");

if (o.serve !== undefined) await serve(Number(o.serve));
else await drive();

/** The dispatcher's process: serves on `port`, answers `cpu` and `exit` over IPC. */
async function serve(port) {
  const { queue, replicator } = await openProbeQueue(core, o.log, { durability: o.durability });
  const dispatcher = new core.Dispatcher({ service: "probe" });
  new core.ResourceLeaseDispatcherComponent(dispatcher, { queue });
  await new core.HttpInbound({ dispatcher, port, maxBodyBytes: 64 * 1024 * 1024 }).start();
  let profiling;
  process.on("message", async (m) => {
    if (m === "cpu") {
      const commits = replicator?.stats().commits ?? 0;
      process.send({ cpu: cpuMicros(process.cpuUsage()), elu: performance.eventLoopUtilization(), commits });
    } else if (m === "profile-start") {
      profiling = await startProfile(o.profile);
      process.send("profiling");
    } else if (m === "profile-stop") process.send(await stopProfile(profiling, o.profile));
    else process.exit(0);
  });
  process.send("ready");
}

async function drive() {
  const server = forkServer(import.meta.url);
  const { port, child, reply } = server;
  let code = 0;
  try {
    await reply();
    const outbound = new core.HttpOutbound({ url: `http://127.0.0.1:${port}` });
    const client = new core.ResourceLeaseClient({ outbound, caller: "probe", coalesceEnqueues: 100 });
    let next = 0;
    const payload = () => jobPayload(next++, jsonBody());
    const count = Number(o.count);
    // Filled before the worker starts, or (--concurrent) enqueued while it runs as the benchmark's lifecycle rows do:
    // batches of 100, two in flight.
    const fill = async (items, batch, lanes) => {
      let at = 0;
      const lane = async () => {
        while (at < items) {
          const n = Math.min(batch, items - at);
          at += n;
          await client.enqueueMany(Array.from({ length: n }, payload));
        }
      };
      await Promise.all(Array.from({ length: lanes }, lane));
    };
    const round = async (items, profile) => {
      if (!o.concurrent) await fill(items, 1000, 1);
      const here = profile && o["profile-of"] === "worker";
      const session = here ? await startProfile(profile) : undefined;
      if (profile && !here) {
        child.send("profile-start");
        await reply();
      }
      child.send("cpu");
      const server0 = await reply();
      const worker0 = performance.eventLoopUtilization();
      const self0 = process.cpuUsage();
      const started = performance.now();
      const worker = new core.ResourceLeaseWorker({
        client,
        peerId: "probe-worker",
        concurrency: Number(o.concurrency),
        prefetch: Number(o.prefetch),
        leaseWaitMs: 2000,
        session: !o.unary,
        handler: () => {},
      }).start();
      const producing = o.concurrent ? fill(items, 100, 2) : Promise.resolve();
      let last = 0;
      let lastAt = performance.now();
      while (worker.stats().completed < items) {
        await new Promise((r) => setTimeout(r, 1));
        const done = worker.stats().completed;
        if (done !== last) [last, lastAt] = [done, performance.now()];
        else if (performance.now() - lastAt > Number(o["stall-ms"])) {
          await worker.close({ graceMs: 0 });
          throw Object.assign(new Error(`stalled at ${done} of ${items} items`), { stalled: true });
        }
      }
      const seconds = (performance.now() - started) / 1000;
      await producing;
      const workerCpu = cpuMicros(process.cpuUsage(self0)) / items;
      child.send("cpu");
      const server1 = await reply();
      const serverCpu = (server1.cpu - server0.cpu) / items;
      // How much of the round each event loop was busy (not waiting in epoll): 1 means it was the bottleneck.
      const dispatcherLoopBusy = performance.eventLoopUtilization(server1.elu, server0.elu).utilization;
      const workerLoopBusy = performance.eventLoopUtilization(performance.eventLoopUtilization(), worker0).utilization;
      await worker.close();
      let top;
      if (session) top = topOf(await stopProfile(session, profile), profile, items);
      else if (profile) {
        child.send("profile-stop");
        top = topOf(await reply(), profile, items);
      }
      return {
        rate: Math.round(items / seconds),
        workerCpuPerItemUs: +workerCpu.toFixed(1),
        dispatcherCpuPerItemUs: +serverCpu.toFixed(1),
        dispatcherLoopBusy: +dispatcherLoopBusy.toFixed(2),
        workerLoopBusy: +workerLoopBusy.toFixed(2),
        // The SQLite log's transactions (group commits) per item.
        commitsPerItem: +((server1.commits - server0.commits) / items).toFixed(3),
        ...(top ? { top } : {}),
      };
    };
    await round(Math.max(1, Math.floor(count / 4)));
    const measured = await round(count, o.profile);
    const { log, durability, concurrency, prefetch, concurrent } = o;
    const mode = o.unary ? "unary" : "session";
    console.log(
      JSON.stringify({
        log,
        durability,
        mode,
        concurrent,
        concurrency: +concurrency,
        prefetch: +prefetch,
        items: count,
        ...measured,
      }),
    );
    await client.close();
  } catch (error) {
    if (!error?.stalled) throw error;
    console.error(`worker-lifecycle: ${error.message}`);
    code = 3;
  } finally {
    await server.end();
  }
  // The client's and the worker's timers would keep the process alive a while: end here.
  process.exit(code);
}

/** The 25 largest entries per item: µs of self time (cpu) or bytes allocated (heap), by function and place. */
function topOf(profile, kind, items) {
  const where = (frame) =>
    `${frame.functionName || "(anonymous)"} ${frame.url.split("/").slice(-2).join("/")}:${frame.lineNumber}`;
  const totals = new Map();
  const add = (key, value) => totals.set(key, (totals.get(key) ?? 0) + value);
  if (kind === "cpu") {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < profile.samples.length; i++) {
      add(where(nodes.get(profile.samples[i]).callFrame), profile.timeDeltas[i]);
    }
  } else {
    const walk = (node) => {
      add(where(node.callFrame), node.selfSize);
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
  }
  return [...totals]
    .filter(([key]) => !key.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([key, value]) => [key, +(value / items).toFixed(2)]);
}
