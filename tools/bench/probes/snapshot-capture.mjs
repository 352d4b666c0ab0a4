// What capturing a snapshot of a full in-process queue costs the event loop: `items` pending items with 200-byte bodies,
// then the time and the heap held by `queue.snapshot()` (every item built at once) and by `queue.snapshotView()`
// (columns; each item built when a log reads it), each read out whole once as a log writing it would. Needs --expose-gc.
// Usage: node --expose-gc probes/snapshot-capture.mjs [items=1000000] [core]
import { fillQueue, QUEUE } from "./shared.mjs";

const items = Number(process.argv[2] ?? 1_000_000);
const core = await import(process.argv[3] ?? "@omnirelay/core");
if (typeof global.gc !== "function") {
  console.error("snapshot-capture: run it with node --expose-gc");
  process.exit(2);
}
const queue = new core.ResourceLeaseQueue(QUEUE);
await fillQueue(queue, items);
const heap = () => {
  global.gc();
  return process.memoryUsage().heapUsed;
};
const ms = (from) => +(performance.now() - from).toFixed(1);
const result = { items };
for (const kind of ["snapshot", "snapshotView"]) {
  const before = heap();
  const started = performance.now();
  const captured = queue[kind]();
  result[`${kind}CaptureMs`] = ms(started);
  result[`${kind}HeldMiB`] = +((heap() - before) / 2 ** 20).toFixed(1);
  // Read out as a log's encoder does: every entry once, by index.
  const reading = performance.now();
  let bytes = 0;
  for (let i = 0; i < captured.pending.length; i++) bytes += captured.pending.at(i).payload.body.byteLength;
  result[`${kind}ReadMs`] = ms(reading);
  if (bytes !== items * 200) throw new Error(`read ${bytes} body bytes, expected ${items * 200}`);
}
console.log(JSON.stringify(result));
// The queue keeps its timers (lease expiries, retention) running: end here.
process.exit(0);
