import { describeDeterministicStoreConformance } from "@omnirelay/core/testing";
import { afterAll, describe, it } from "vitest";
import { dropRunSchema, freshTable, openStore } from "./helpers.js";

// The contract every deterministic store shares, from core's suite, against the machine's PostgreSQL: each check gets
// a table of its own in this run's schema; a reopen is a new pool on the same table, and "another" is a second node's.
afterAll(async () => {
  await dropRunSchema();
});

describeDeterministicStoreConformance(
  "PostgresDeterministicStateStore",
  {
    create: () => openStore(freshTable()),
    reopen: (closed) => openStore(closed.table),
    openAnother: (open) => openStore(open.table),
  },
  { test: { describe, it } },
);
