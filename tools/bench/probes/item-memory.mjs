// What an in-process queue holds per pending item: `items` items with 200-byte bodies, enqueued in batches of 1,000,
// then V8 heap, ArrayBuffer and RSS growth per item after two full GCs. Needs --expose-gc. `core` is the module to
// load (default @omnirelay/core; a path to another build's dist/index.js compares two builds).
// Usage: node --expose-gc probes/item-memory.mjs [items=200000] [core]
import { fillQueue, QUEUE } from "./shared.mjs";

const items = Number(process.argv[2] ?? 200_000);
const core = await import(process.argv[3] ?? "@omnirelay/core");
if (typeof global.gc !== "function") {
  console.error("item-memory: run it with node --expose-gc");
  process.exit(2);
}
// A full GC frees ArrayBuffers on a background sweeper, which a busy machine can leave behind the reading (CI saw
// ~140 KB of module-load buffers go between the two readings, -29 bytes per item of 5,000). Read once the
// arrayBuffers figure stops moving.
async function settledUsage() {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    global.gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const usage = process.memoryUsage();
    if (usage.arrayBuffers === last) return usage;
    last = usage.arrayBuffers;
  }
  return process.memoryUsage();
}
const queue = new core.ResourceLeaseQueue(QUEUE);
const before = await settledUsage();
await fillQueue(queue, items);
const after = await settledUsage();
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
