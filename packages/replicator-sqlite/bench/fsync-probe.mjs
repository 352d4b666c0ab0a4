// How long this disk takes to make a small write durable: `count` pairs of a 4 KiB write and an fdatasync on one file
// in `dir` (default: the OS temp dir), then the latency percentiles of the fdatasync. The `'batched'` durability's
// group commit waits for one of these, so its latency tail bounds the queue's.
// Usage: node bench/fsync-probe.mjs [count=2000] [dir]
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const count = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(process.argv[3] ?? tmpdir(), "omnirelay-fsync-"));
const fd = openSync(join(dir, "probe.bin"), "w");
const block = Buffer.alloc(4096, 1);
const ms = [];
try {
  for (let i = 0; i < count; i++) {
    writeSync(fd, block);
    const started = process.hrtime.bigint();
    fdatasyncSync(fd);
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
} finally {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
ms.sort((a, b) => a - b);
const at = (p) => +ms[Math.floor(p * (ms.length - 1))].toFixed(3);
console.log(JSON.stringify({ count, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) }));
