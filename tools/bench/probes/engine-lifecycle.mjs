// The queue engine's own CPU per item, in process, no transport and no log: rounds of enqueueMany(100) →
// lease(100) → completeMany on an in-memory queue, after 300 rounds of warm-up. `core` as in item-memory.mjs ("-": the
// default); `pending` items are enqueued first, so each round leases items that deep in the queue (FIFO).
// Usage: node probes/engine-lifecycle.mjs [rounds=2000] [core] [pending=0]
// With PROFILE_OUT=<file>, writes a V8 CPU profile of the measured rounds only (not the fill or the warm-up) there.
import { fillQueue, jobPayload, QUEUE, startProfile, stopProfile } from "./shared.mjs";

const rounds = Number(process.argv[2] ?? 2000);
const core = await import(process.argv[3] && process.argv[3] !== "-" ? process.argv[3] : "@omnirelay/core");
const pending = Number(process.argv[4] ?? 0);
const queue = new core.ResourceLeaseQueue(QUEUE);
let next = 0;
const payload = () => jobPayload(next++, new Uint8Array(200).fill(65));
await fillQueue(queue, pending, payload);
const round = async () => {
  await queue.enqueueMany(Array.from({ length: 100 }, payload));
  const grants = await queue.lease({ maxItems: 100 });
  await queue.completeMany(grants.map((g) => g.ownershipToken));
};
for (let i = 0; i < 300; i++) await round();
const session = process.env.PROFILE_OUT ? await startProfile("cpu") : undefined;
const cpu = process.cpuUsage();
const faults = process.resourceUsage().minorPageFault;
const started = performance.now();
for (let i = 0; i < rounds; i++) await round();
const used = process.cpuUsage(cpu);
if (session) await stopProfile(session, "cpu");
const items = rounds * 100;
console.log(
  JSON.stringify({
    items,
    left: queue.stats().pendingCount + queue.stats().activeLeaseCount,
    cpuMicrosPerItem: +((used.user + used.system) / items).toFixed(2),
    minorFaultsPerItem: +((process.resourceUsage().minorPageFault - faults) / items).toFixed(3),
    wallMicrosPerItem: +(((performance.now() - started) * 1000) / items).toFixed(2),
  }),
);
// The queue keeps its timers (lease expiries, retention) running: end here.
process.exit(0);
