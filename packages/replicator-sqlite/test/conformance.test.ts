import { describeDeterministicStoreConformance, describeEventLogConformance } from "@omnirelay/core/testing";
import { describe, it } from "vitest";
import { SqliteDeterministicStateStore, type SqliteDurability, SqliteResourceLeaseReplicator } from "../src/index.js";
import { tempDb } from "./helpers.js";

// The contracts every event log and deterministic store shares, from core's suites; this package's own tests cover
// what only SQLite has (durability modes, checksums, the high-water record, faulting, repair, retention).

const test = { describe, it };

// 'async' is left out on purpose: it acknowledges a publish before the commit, so a read right after it may not see
// the events yet (see SqliteDurability); replicator.test.ts covers it.
for (const durability of ["batched", "sync", "process-safe"] as const satisfies readonly SqliteDurability[]) {
  const open = async (path: string) => {
    const log = await SqliteResourceLeaseReplicator.open({ path, durability });
    return { path, log, close: () => log.close() };
  };
  describeEventLogConformance(
    `SqliteResourceLeaseReplicator (${durability})`,
    { create: () => open(tempDb()), reopen: (closed) => open(closed.path) },
    { test, gaps: "refused" },
  );
}

const openStore = async (path: string) => {
  const store = await SqliteDeterministicStateStore.open({ path });
  return { path, store, close: () => store.close() };
};

describeDeterministicStoreConformance(
  "SqliteDeterministicStateStore",
  {
    create: () => openStore(tempDb("state.db")),
    reopen: (closed) => openStore(closed.path),
    // A second connection on the same file, as a second process would have.
    openAnother: (open) => openStore(open.path),
  },
  { test },
);
