// Where an enqueue's time goes, without the rest of the benchmark: a dispatcher in a child process (SQLite log, or an
// in-memory queue) and one ResourceLeaseClient here, over HTTP or gRPC. Two modes:
//   paced  — one enqueue at a time at `--rate` items/s (the latency row's producer): the round trip's percentiles, and
//            the dispatcher's own share of it (the time in `dispatcher.dispatch`, which holds the log's commit);
//   closed — `--lanes` callers, each enqueuing one item and awaiting it (the `enqueue-single` row): the rate, the
//            round trip, each process's CPU per item and how many of the machine's cores that kept busy.
// The first quarter of the items warms up and is left out of every figure. Prints one JSON line.
// Usage: node probes/enqueue-rtt.mjs [--transport http|grpc] [--log sqlite|memory] [--durability batched|async|…]
//          [--mode paced|closed] [--count 4000] [--rate 1000] [--lanes 64] [--coalesce 100]
// Run it after `pnpm build` (it loads the packages' dist).
import { parseArgs } from "node:util";
import { cpuMicros, forkServer, jobPayload, jsonBody, openProbeQueue } from "./shared.mjs";

const { values: o } = parseArgs({
  options: {
    transport: { type: "string", default: "http" },
    log: { type: "string", default: "sqlite" },
    durability: { type: "string", default: "batched" },
    mode: { type: "string", default: "paced" },
    count: { type: "string", default: "4000" },
    rate: { type: "string", default: "1000" },
    lanes: { type: "string", default: "64" },
    coalesce: { type: "string", default: "100" },
    serve: { type: "string" },
  },
});
for (const [flag, allowed] of [
  ["transport", ["http", "grpc"]],
  ["log", ["sqlite", "memory"]],
  ["mode", ["paced", "closed"]],
]) {
  if (!allowed.includes(o[flag])) {
    console.error(`enqueue-rtt: --${flag} ${allowed.join("|")}, not ${o[flag]}`);
    process.exit(2);
  }
}

const core = await import("@omnirelay/core");
const grpc = o.transport === "grpc" ? await import("@omnirelay/transport-grpc") : undefined;
const MAX_BYTES = 64 * 1024 * 1024;

const quantile = (sorted, p) => +(sorted[Math.floor(p * (sorted.length - 1))] ?? Number.NaN).toFixed(3);

if (o.serve !== undefined) await serve(Number(o.serve));
else await drive();

/** The dispatcher's process: serves on `port`, times each dispatch, answers `stats` and `exit` over IPC. */
async function serve(port) {
  const { queue, close } = await openProbeQueue(core, o.log, { durability: o.durability });
  const dispatcher = new core.Dispatcher({ service: "probe" });
  new core.ResourceLeaseDispatcherComponent(dispatcher, { queue });
  let dispatches = [];
  const dispatch = dispatcher.dispatch.bind(dispatcher);
  dispatcher.dispatch = (request) => {
    const started = performance.now();
    const answered = dispatch(request);
    answered.then(
      () => dispatches.push(performance.now() - started),
      () => undefined,
    );
    return answered;
  };
  const inbound =
    o.transport === "http"
      ? new core.HttpInbound({ dispatcher, port, maxBodyBytes: MAX_BYTES })
      : new grpc.GrpcInbound({ dispatcher, port, maxMessageBytes: MAX_BYTES, shutdownGraceMs: 100 });
  await inbound.start();
  process.on("message", async (m) => {
    if (m === "stats") {
      process.send({ cpu: cpuMicros(process.cpuUsage()), dispatches });
      dispatches = [];
    } else if (m === "exit") {
      await inbound.close();
      await close();
      process.exit(0);
    }
  });
  process.send("ready");
}

async function drive() {
  const server = forkServer(import.meta.url);
  const { port, child, reply } = server;
  try {
    await reply();
    const outbound =
      o.transport === "http"
        ? new core.HttpOutbound({ url: `http://127.0.0.1:${port}` })
        : new grpc.GrpcOutbound({ address: `127.0.0.1:${port}`, maxMessageBytes: MAX_BYTES });
    const client = new core.ResourceLeaseClient({
      outbound,
      caller: "probe",
      coalesceEnqueues: Number(o.coalesce),
    });
    const count = Number(o.count);
    const warm = Math.floor(count / 4);
    const stats = async () => {
      child.send("stats");
      return await reply();
    };
    const trips = [];
    const timed = (i) => {
      const sent = performance.now();
      return client.enqueue(jobPayload(i, jsonBody())).then(() => {
        if (i >= warm) trips.push(performance.now() - sent);
      });
    };
    let result;
    if (o.mode === "paced") {
      const interval = 1000 / Number(o.rate);
      const pending = [];
      let start = performance.now();
      for (let i = 0; i < count; i++) {
        if (i === warm) {
          await Promise.all(pending.splice(0));
          await stats();
          start = performance.now() - i * interval;
        }
        const wait = start + i * interval - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        pending.push(timed(i));
      }
      await Promise.all(pending);
      const server = await stats();
      const d = server.dispatches.sort((a, b) => a - b);
      result = { dispatchP50: quantile(d, 0.5), dispatchP90: quantile(d, 0.9), dispatchP99: quantile(d, 0.99) };
    } else {
      const lanes = Number(o.lanes);
      const run = async (from, to) => {
        let next = from;
        const lane = async () => {
          while (next < to) await timed(next++);
        };
        await Promise.all(Array.from({ length: lanes }, lane));
      };
      await run(0, warm);
      const server0 = (await stats()).cpu;
      const self0 = process.cpuUsage();
      const started = performance.now();
      await run(warm, count);
      const seconds = (performance.now() - started) / 1000;
      const server = ((await stats()).cpu - server0) / (count - warm);
      const producer = cpuMicros(process.cpuUsage(self0)) / (count - warm);
      result = {
        rate: Math.round((count - warm) / seconds),
        serverCpuPerItemUs: +server.toFixed(1),
        producerCpuPerItemUs: +producer.toFixed(1),
        coresBusy: +(((server + producer) * (count - warm)) / 1e6 / seconds).toFixed(2),
      };
    }
    trips.sort((a, b) => a - b);
    const { transport, log, durability, mode } = o;
    const round = { p50: quantile(trips, 0.5), p90: quantile(trips, 0.9), p99: quantile(trips, 0.99) };
    console.log(JSON.stringify({ transport, log, durability, mode, items: trips.length, ...round, ...result }));
    await client.close();
  } finally {
    await server.end();
  }
}
