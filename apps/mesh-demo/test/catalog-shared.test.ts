import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamDeterministicStateStore } from "@omnirelay/replicator-jetstream";
import { describe, expect, it } from "vitest";
import { type CatalogOperation, CatalogState } from "../src/catalog.js";

const SERVERS = "nats://127.0.0.1:4222";

const op = (version: number, requestId: string): CatalogOperation => ({
  catalog: "sales",
  database: "core",
  table: "orders",
  operationType: version === 1 ? "CreateTable" : "AlterSchema",
  version,
  principal: "test",
  columns: version === 1 ? ["id bigint"] : [`c${version} string`],
  changes: [],
  timestamp: new Date(0).toISOString(),
  requestId,
});

describe("CatalogState on a store two nodes share (JetStream KV, the three-node mode)", () => {
  it("judges each operation against the table's stored version, not one node's memory, and applies a requestId once", async () => {
    const bucket = `MESHCAT_${randomBytes(4).toString("hex")}`;
    const storeA = await JetStreamDeterministicStateStore.open({ servers: SERVERS, bucket });
    const storeB = await JetStreamDeterministicStateStore.open({ servers: SERVERS, bucket });
    try {
      // Both nodes load before anything is applied, as after a start.
      const a = await CatalogState.load(storeA, { shared: true });
      const b = await CatalogState.load(storeB, { shared: true });
      expect((await a.apply(op(1, "r1"), "worker")).outcome).toBe("Created");
      // b never applied v1 itself: it still sees the table the other node created.
      expect((await b.apply(op(2, "r2"), "worker")).outcome).toBe("Updated");
      // a's memory says v1, but the stored table is at v2: an older version is stale.
      expect((await a.apply(op(1, "r1-again"), "worker")).outcome).toBe("Stale");
      // The same requestId on the other node is a duplicate, applied once.
      expect((await b.apply(op(1, "r1"), "worker")).outcome).toBe("Duplicate");
      // A node started now loads the table at v2 with both nodes' columns.
      const c = await CatalogState.load(storeA, { shared: true });
      const view = c.view();
      expect(view.tables.map((t) => [t.table, t.version, t.columns])).toEqual([
        ["orders", 2, ["id bigint", "c2 string"]],
      ]);
      // The same version sent twice under two requestIds, to the two nodes: the second is a duplicate version.
      expect((await b.apply(op(3, "r3"), "worker")).outcome).toBe("Updated");
      expect((await a.apply(op(3, "r3-other"), "worker")).outcome).toBe("Duplicate");
    } finally {
      await storeA.close();
      await storeB.close();
      const nc = await connect({ servers: SERVERS });
      await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`).catch(() => undefined);
      await nc.close();
    }
  });
});
