/**
 * The quick-start program: a real, small OmniRelay node and its clients in one process.
 *
 * - a dispatcher serving `resourcelease::*` over HTTP on 127.0.0.1, its queue durable in a SQLite log;
 * - a producer enqueuing catalog operations (with requestIds, so a retried enqueue is harmless);
 * - two workers (ResourceLeaseWorker) leasing over HTTP, heartbeating, failing one item once, completing the rest;
 * - a restart: the node is closed and its queue rebuilt from the SQLite file alone.
 *
 *   pnpm --filter @omnirelay/example start -- [--items N] [--data-dir DIR]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  ResourceLeaseWorker,
} from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { openDurableResourceLeaseQueue } from "@omnirelay/replicator-sqlite";

const { values } = parseArgs({
  options: { items: { type: "string", default: "6" }, "data-dir": { type: "string" } },
});
const total = Number(values.items);
if (!Number.isSafeInteger(total) || total < 1 || total > 100_000) {
  console.error("error: --items must be an integer between 1 and 100000");
  process.exit(2);
}
// Without --data-dir the log lives in a scratch folder that is removed at the end; --data-dir keeps it.
const dataDir = values["data-dir"] ?? mkdtempSync(join(tmpdir(), "omnirelay-example-"));
const logPath = join(dataDir, "resourcelease.db");

// The node: a durable queue, served over HTTP. The dispatcher owns its parts: start() starts the inbound, stop()
// drains it, then closes the component's queue, then the log (the last added closes first).
const health = new PeerLeaseHealthTracker();
const durable = await openDurableResourceLeaseQueue({
  path: logPath,
  queueOptions: { leaseDurationMs: 5_000, maxAttempts: 3, observers: [(event) => health.observe(event)] },
});
const dispatcher = new Dispatcher({ service: "example" }).addComponent(durable);
new ResourceLeaseDispatcherComponent(dispatcher, { queue: durable.queue, healthTracker: health });
const inbound = new HttpInbound({ dispatcher });
await dispatcher.start();
const url = inbound.url;
console.log(`dispatcher listening on ${url} (log ${logPath}, ${durable.replayedEvents} events replayed)`);

// The producer.
const producer = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), caller: "seeder" });
for (let i = 1; i <= total; i++) {
  await producer.enqueue({
    resourceType: "table",
    resourceId: `sales.orders_${i}`,
    partitionKey: "catalog-a",
    payloadEncoding: "json",
    body: new TextEncoder().encode(JSON.stringify({ op: "CommitSnapshot", table: i })),
    requestId: `seed-${i}`,
  });
}
const retry = await producer.enqueue({
  resourceType: "table",
  resourceId: "sales.orders_1",
  partitionKey: "catalog-a",
  payloadEncoding: "json",
  requestId: "seed-1",
});
console.log(`enqueued ${total} items (a retried requestId was de-duplicated: ${retry.duplicate})`);

// Two workers over HTTP. The first attempt at one item fails, to show a retry.
let completed = 0;
let failedOnce = false;
let allDone!: () => void;
const done = new Promise<void>((resolve) => {
  allDone = resolve;
});
const workers = ["worker-1", "worker-2"].map((peerId) =>
  new ResourceLeaseWorker({
    client: new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), caller: peerId }),
    peerId,
    concurrency: 2,
    leaseWaitMs: 200,
    handler: async (item, { attempt }) => {
      if (!failedOnce) {
        failedOnce = true;
        console.log(`${peerId} failed ${item.payload.resourceId} (attempt ${attempt}); it will be retried`);
        throw new Error("transient: catalog busy");
      }
      await new Promise((resolve) => setTimeout(resolve, 20)); // the "work"
      completed++;
      console.log(
        `${peerId} completed ${item.payload.resourceId} attempt=${attempt} fencingToken=${item.ownershipToken.fencingToken}`,
      );
      if (completed === total) allDone();
    },
  }).start(),
);
await done;
await Promise.all(workers.map((w) => w.close()));

const stats = await producer.stats();
console.log(`completed ${completed} of ${total}; pending=${stats.pendingCount} active=${stats.activeLeaseCount}`);
for (const peer of health.snapshot()) console.log(`peer ${peer.peerId}: healthy=${peer.isHealthy}`);
const lastEventSequence = stats.lastEventSequence;
await producer.close();
await dispatcher.stop();

// "Restart": rebuild the queue from the SQLite file alone.
const reopened = await openDurableResourceLeaseQueue({ path: logPath });
const after = reopened.queue.stats();
const same = after.lastEventSequence === lastEventSequence && after.pendingCount === 0 && after.activeLeaseCount === 0;
console.log(`restart: rebuilt from ${lastEventSequence} logged events; state matches: ${same}`);
await reopened.close();
if (values["data-dir"] === undefined) rmSync(dataDir, { recursive: true, force: true });
if (!same || completed !== total) process.exit(1);
