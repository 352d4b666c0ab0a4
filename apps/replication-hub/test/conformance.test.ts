import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeEventLogConformance } from "@omnirelay/core/testing";
import type { SqliteDurability } from "@omnirelay/replicator-sqlite";
import { afterEach, describe, it } from "vitest";
import { SqliteReplicationHubStore } from "../src/sqlite-store.js";

// The hub stores each source through a ReplicationHubLog; this store's are SQLite files, one per source. Reopen is a
// new store on the same data directory, as a restarted hub process opens it. (The path through gRPC is checked end to
// end by @omnirelay/replicator-grpc's conformance test and, on SQLite, by sqlite-resend.test.ts.)

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const source = { nodeId: "node-a", shard: "billing" };

for (const durability of ["batched", "sync"] as const satisfies readonly SqliteDurability[]) {
  const open = async (dataDir: string) => {
    const log = await new SqliteReplicationHubStore({ dataDir, durability }).open(source);
    return { dataDir, log, close: () => log.close?.() ?? Promise.resolve() };
  };
  describeEventLogConformance(
    `SqliteReplicationHubStore source log (${durability})`,
    {
      create: async () => {
        const dir = await mkdtemp(join(tmpdir(), "omnirelay-hub-conformance-"));
        dirs.push(dir);
        return open(join(dir, "data"));
      },
      reopen: (closed) => open(closed.dataDir),
    },
    { test: { describe, it }, gaps: "refused" },
  );
}
