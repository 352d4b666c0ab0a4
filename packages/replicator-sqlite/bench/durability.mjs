// Events per second of each durability mode: `concurrency` callers each enqueue one item at a time through a
// ResourceLeaseQueue whose replicator is the SQLite log (every enqueue is one event and one publish).
// Usage: node bench/durability.mjs [events=5000] [concurrency=64]   (build the package first)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResourceLeaseQueue } from "@omnirelay/core";
import { SqliteResourceLeaseReplicator } from "../dist/index.js";

const total = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 64);
const dir = mkdtempSync(join(tmpdir(), "omnirelay-bench-"));
const rows = [];
try {
  for (const durability of ["sync", "batched", "process-safe", "async"]) {
    for (const callers of [1, concurrency]) {
      const log = await SqliteResourceLeaseReplicator.open({
        path: join(dir, `${durability}-${callers}.db`),
        durability,
      });
      const queue = new ResourceLeaseQueue({ replicator: log, capacity: total + 1 });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: callers }, async () => {
          while (next < total) {
            const i = next++;
            await queue.enqueue({
              resourceType: "bench",
              resourceId: String(i),
              partitionKey: "p",
              payloadEncoding: "json",
            });
          }
        }),
      );
      await log.close(); // includes the final commit of 'async'
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        durability,
        callers,
        events: total,
        eventsPerSecond: Math.round(total / seconds),
        commits: log.stats().commits,
      });
      await queue.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.table(rows);
