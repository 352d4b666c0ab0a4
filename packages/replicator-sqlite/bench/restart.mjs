// Restart to serving from a large log, in-process: how long `openDurableResourceLeaseQueue` takes to reopen a log
// filled with N enqueues of 200-byte bodies. The fill closes its queue, which stores a snapshot at close when one is
// due (see `snapshotOnClose`), as the benchmark's restart-large scenario's graceful stop does; `fill … false` leaves it
// out, as a kill after the fill would.
// Build the package first (`pnpm --filter @omnirelay/replicator-sqlite build`).
//
//   node bench/restart.mjs [events=1000000] [runs=3]   fill a log in a temp dir, then time `runs` restarts, each
//                                                      in a fresh process; prints a table and removes the log
//   node bench/restart.mjs fill <path> [events] [done] [snapshotOnClose=true]
//                                                      only fill the log at <path>; then lease and complete the
//                                                      first `done` items (two events each, as the benchmark's
//                                                      lifecycle at depth leaves its log); `false` closes it
//                                                      without the snapshot at close (as a kill after the fill)
//   node bench/restart.mjs open <path>                 only time one restart of <path> (prints one JSON line);
//                                                      run it as `node --cpu-prof bench/restart.mjs open <path>`
//                                                      for a profile, then summarise it with cpuprofile-top.mjs
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openDurableResourceLeaseQueue } from "../dist/index.js";

const BATCH = 1000;
const queueOptions = { capacity: 4_000_000, leaseDurationMs: 60_000, maxBatchSize: BATCH };
const encoder = new TextEncoder();

/** A 200-byte JSON body, as the benchmark's producer sends. */
function body(i) {
  const head = JSON.stringify({ t: Date.now(), i, pad: "" });
  return encoder.encode(`${head.slice(0, -2)}${"x".repeat(200 - head.length)}"}`);
}

async function fill(path, events, { done = 0, snapshotOnClose = true } = {}) {
  const durable = await openDurableResourceLeaseQueue({
    path,
    queueOptions,
    snapshotOnClose,
    replicatorOptions: { durability: "process-safe" },
  });
  const started = performance.now();
  for (let done = 0; done < events; done += BATCH) {
    const n = Math.min(BATCH, events - done);
    await durable.queue.enqueueMany(
      Array.from({ length: n }, (_, k) => ({
        resourceType: "job",
        resourceId: String(done + k),
        partitionKey: `p${(done + k) % 16}`,
        payloadEncoding: "json",
        body: body(done + k),
      })),
    );
  }
  for (let finished = 0; finished < done; ) {
    const grants = await durable.queue.lease({ maxItems: Math.min(100, done - finished) });
    await durable.queue.completeMany(grants.map((g) => g.ownershipToken));
    finished += grants.length;
  }
  const seconds = (performance.now() - started) / 1000;
  const closing = performance.now();
  await durable.close();
  return {
    events,
    done,
    fillSeconds: Math.round(seconds * 10) / 10,
    closeSeconds: Math.round((performance.now() - closing) / 100) / 10,
    snapshot: durable.replicator.stats().lastSnapshotSequence,
    mib: Math.round(statSync(path).size / 2 ** 20),
  };
}

async function open(path) {
  const started = performance.now();
  const durable = await openDurableResourceLeaseQueue({ path, queueOptions });
  const ms = Math.round(performance.now() - started);
  const stats = durable.queue.stats();
  const result = {
    ms,
    pending: stats.pendingCount,
    replayedEvents: durable.replayedEvents,
    snapshotSequence: durable.snapshotSequence,
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
  await durable.close();
  return result;
}

const [mode, path, n, done, onClose] = process.argv.slice(2);
if (mode === "fill") {
  console.log(
    JSON.stringify(
      await fill(path, Number(n ?? 1_000_000), { done: Number(done ?? 0), snapshotOnClose: onClose !== "false" }),
    ),
  );
} else if (mode === "open") {
  console.log(JSON.stringify(await open(path)));
} else {
  const events = Number(mode ?? 1_000_000);
  const runs = Number(path ?? 3);
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-restart-"));
  try {
    const db = join(dir, "log.db");
    console.log("fill", await fill(db, events));
    const self = fileURLToPath(import.meta.url);
    const rows = [];
    for (let i = 0; i < runs; i++) {
      rows.push(JSON.parse(execFileSync(process.execPath, [self, "open", db], { encoding: "utf8" })));
    }
    console.table(rows);
    const sorted = rows.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`median ${sorted[Math.floor(sorted.length / 2)]} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
