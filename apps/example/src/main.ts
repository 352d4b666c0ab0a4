/**
 * The smallest useful OmniRelay program: a lease queue with a replication log, a producer, two workers that
 * lease, heartbeat, fail once and complete, and a restart that rebuilds the queue from the log alone.
 *
 *   pnpm --filter @omnirelay/example start -- [--items N]
 */
import { parseArgs } from "node:util";
import {
  InMemoryResourceLeaseEventLog,
  PeerLeaseHealthTracker,
  type ResourceLeaseGrant,
  ResourceLeaseQueue,
} from "@omnirelay/core";

const { values } = parseArgs({ options: { items: { type: "string", default: "6" } } });
const total = Number(values.items);
if (!Number.isSafeInteger(total) || total < 1 || total > 100_000) {
  console.error("error: --items must be an integer between 1 and 100000");
  process.exit(2);
}

const log = new InMemoryResourceLeaseEventLog();
const health = new PeerLeaseHealthTracker();
const queue = new ResourceLeaseQueue({
  leaseDurationMs: 2_000,
  maxAttempts: 3,
  replicator: log,
  observers: [(event) => health.observe(event)],
});

// Producer: one work item per catalog table. requestId makes a retried enqueue harmless.
for (let i = 1; i <= total; i++) {
  await queue.enqueue({
    resourceType: "table",
    resourceId: `sales.orders_${i}`,
    partitionKey: "catalog-a",
    payloadEncoding: "json",
    body: new TextEncoder().encode(JSON.stringify({ op: "CommitSnapshot", table: i })),
    requestId: `seed-${i}`,
  });
}
await queue.enqueue({
  resourceType: "table",
  resourceId: "dup",
  partitionKey: "x",
  payloadEncoding: "json",
  requestId: "seed-1",
});
console.log(`enqueued ${total} items (a retried requestId was de-duplicated): pending=${queue.stats().pendingCount}`);

let completed = 0;
let failedOnce = false;
async function worker(peerId: string): Promise<void> {
  for (;;) {
    const [grant]: ResourceLeaseGrant[] = await queue.lease({ peerId, waitMs: 50 });
    if (!grant) return; // nothing left
    const { ownershipToken } = grant;
    await queue.heartbeat(ownershipToken); // long work would heartbeat on an interval
    if (!failedOnce) {
      failedOnce = true;
      const outcome = await queue.fail(ownershipToken, { reason: "transient: catalog busy", errorCode: "demo.busy" });
      console.log(`${peerId} failed ${grant.payload.resourceId} (attempt ${grant.attempt}) -> ${outcome}`);
      continue;
    }
    await queue.complete(ownershipToken);
    completed++;
    console.log(
      `${peerId} completed ${grant.payload.resourceId} attempt=${grant.attempt} fencingToken=${ownershipToken.fencingToken}`,
    );
  }
}
await Promise.all([worker("worker-1"), worker("worker-2")]);

const stats = queue.stats();
console.log(`completed ${completed} of ${total}; pending=${stats.pendingCount} active=${stats.activeLeaseCount}`);
for (const peer of health.snapshot()) console.log(`peer ${peer.peerId}: healthy=${peer.isHealthy}`);

// "Restart": a new queue rebuilt from the replication log alone ends in the same state.
const events = [];
for await (const event of log.read(1)) events.push(event);
const rebuilt = await ResourceLeaseQueue.rebuild(events, {});
const same = JSON.stringify(rebuilt.snapshot()) === JSON.stringify(queue.snapshot());
console.log(`replication log: ${events.length} events; rebuilt queue identical: ${same}`);
await Promise.all([queue.close(), rebuilt.close()]);
if (!same || completed !== total) process.exit(1);
