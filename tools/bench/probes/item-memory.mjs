// What an in-process queue holds per pending item: `items` items with 200-byte bodies, enqueued in batches of 1,000,
// then V8 heap, ArrayBuffer and RSS growth per item after two full GCs. Needs --expose-gc. `core` is the module to
// load (default @omnirelay/core; a path to another build's dist/index.js compares two builds).
// Usage: node --expose-gc probes/item-memory.mjs [items=200000] [core]
import { jobPayload, QUEUE } from "./shared.mjs";

const items = Number(process.argv[2] ?? 200_000);
const core = await import(process.argv[3] ?? "@omnirelay/core");
if (typeof global.gc !== "function") {
  console.error("item-memory: run it with node --expose-gc");
  process.exit(2);
}
const queue = new core.ResourceLeaseQueue(QUEUE);
global.gc();
const before = process.memoryUsage();
for (let i = 0; i < items; i += 1000) {
  const n = Math.min(1000, items - i);
  await queue.enqueueMany(Array.from({ length: n }, (_, k) => jobPayload(i + k, new Uint8Array(200).fill(65))));
}
global.gc();
global.gc();
const after = process.memoryUsage();
const per = (key) => +((after[key] - before[key]) / items).toFixed(1);
console.log(
  JSON.stringify({
    items: queue.stats().pendingCount,
    heapBytesPerItem: per("heapUsed"),
    arrayBufferBytesPerItem: per("arrayBuffers"),
    rssBytesPerItem: per("rss"),
  }),
);
// The queue keeps its timers (lease expiries, retention) running: end here.
process.exit(0);
