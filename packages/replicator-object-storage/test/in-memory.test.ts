import { describeEventLogConformance, InMemoryResourceLeaseObjectStore } from "@omnirelay/core/testing";
import { describe, it } from "vitest";
import { ObjectStorageResourceLeaseReplicator } from "../src/index.js";

// The replicator on core's in-memory object store: the double behaves as S3 does (its create-if-absent conflict has
// this package's code), so code written against the replicator can be tested without an emulator.
const openLog = async (store: InMemoryResourceLeaseObjectStore) => {
  const log = await ObjectStorageResourceLeaseReplicator.open(store, { maxSegmentEvents: 50 });
  return { store, log, close: () => log.close() };
};

describeEventLogConformance(
  "ObjectStorageResourceLeaseReplicator on InMemoryResourceLeaseObjectStore",
  { create: () => openLog(new InMemoryResourceLeaseObjectStore()), reopen: (closed) => openLog(closed.store) },
  { test: { describe, it }, gaps: "refused" },
);
