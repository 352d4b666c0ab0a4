// Lease rate of an in-process queue (no replicator: the grant structure alone) with and without a million delayed
// items, and how soon a small tenant is served while a large one floods the queue with fair sharing on.
// Build the package first (`pnpm --filter @omnirelay/core build`).
//
//   node bench/scheduling.mjs [delayed=1000000] [ops=100000]
import { ResourceLeaseQueue } from "../dist/index.js";
import { FakeClock } from "../dist/testing.js";

const delayedCount = Number(process.argv[2] ?? 1_000_000);
const ops = Number(process.argv[3] ?? 100_000);
// "mixed": items of seven priorities (the heap path); otherwise one priority (the FIFO run).
const mixed = process.argv[4] === "mixed";
const BATCH = 10_000;
const payload = (i, extra) => ({
  resourceType: "t",
  resourceId: String(i),
  partitionKey: "p",
  payloadEncoding: "json",
  ...extra,
});

async function fill(queue, count, make) {
  for (let n = 0; n < count; n += BATCH) {
    const size = Math.min(BATCH, count - n);
    await queue.enqueueMany(Array.from({ length: size }, (_, i) => make(n + i)));
  }
}

/** lease + complete, one item at a time, `ops` times; ops per second. */
async function leaseRate(delayed) {
  const clock = new FakeClock();
  const queue = new ResourceLeaseQueue({ clock, capacity: delayed + ops + 1, maxBatchSize: BATCH });
  const t0 = clock.now();
  await fill(queue, delayed, (i) => payload(i, { notBefore: t0 + 86_400_000 + ((i * 7919) % delayed) }));
  await fill(queue, ops, (i) => payload(delayed + i, mixed ? { priority: i % 7 } : {}));
  const started = performance.now();
  for (let i = 0; i < ops; i++) {
    const [grant] = await queue.lease();
    await queue.complete(grant.ownershipToken);
  }
  const seconds = (performance.now() - started) / 1000;
  await queue.close();
  return Math.round(ops / seconds);
}

/** Tenant A has `delayed` pending; B enqueues 10; in how many grants are all of B's served (fair sharing on). */
async function fairness(big) {
  const queue = new ResourceLeaseQueue({
    clock: new FakeClock(),
    capacity: big + 10,
    maxBatchSize: BATCH,
    keys: { by: { attribute: "tenant" }, fair: true },
  });
  await fill(queue, big, (i) => payload(i, { attributes: { tenant: "A" } }));
  await queue.lease({ maxItems: 100 });
  await fill(queue, 10, (i) => payload(big + i, { attributes: { tenant: "B" } }));
  let grants = 0;
  let served = 0;
  while (served < 10) {
    const [g] = await queue.lease();
    grants++;
    if (g.payload.attributes.tenant === "B") served++;
  }
  await queue.close();
  return grants;
}

await leaseRate(0); // warm up
const none = await leaseRate(0);
const loaded = await leaseRate(delayedCount);
const grants = await fairness(delayedCount);
console.log(`| lease + complete, in-process, ${ops.toLocaleString("en")} ops | ops/s |`);
console.log(`|---|---|`);
console.log(`| no delayed items | ${none.toLocaleString("en")} |`);
console.log(`| ${delayedCount.toLocaleString("en")} delayed items | ${loaded.toLocaleString("en")} |`);
console.log(
  `\nfair sharing: tenant B's 10 items all granted within ${grants} grants of tenant A's ${delayedCount.toLocaleString("en")}`,
);
