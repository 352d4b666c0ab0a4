import { describeDeterministicStoreConformance } from "@omnirelay/core/testing";
import { afterAll, describe, it } from "vitest";
import { deleteRunKeys, freshPrefix, openStore } from "./helpers.js";

// The contract every deterministic store shares, from core's suite, against the machine's Redis: each check gets a
// key prefix of its own; a reopen is a new connection on the same prefix, and "another" is a second node's store.
afterAll(async () => {
  await deleteRunKeys();
});

describeDeterministicStoreConformance(
  "RedisDeterministicStateStore",
  {
    create: () => openStore(freshPrefix()),
    reopen: (closed) => openStore(closed.keyPrefix),
    openAnother: (open) => openStore(open.keyPrefix),
  },
  { test: { describe, it } },
);
