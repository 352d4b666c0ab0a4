import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import {
  GrpcReplicationErrorCodes,
  GrpcReplicationHub,
  GrpcResourceLeaseReplicator,
  type ReplicationHubSourceStatus,
} from "@omnirelay/replicator-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteReplicationHubStore } from "../src/sqlite-store.js";

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const payload = (id: string) => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: "p-ü",
  payloadEncoding: "json",
  body: new Uint8Array([0, 1, 2, 250, 255]),
  attributes: { zeta: "1", alpha: "2", "emoji-🙂": "✓" },
  requestId: `req-${id}`,
});
const token = (n: number) => ({
  sequenceId: n,
  attempt: 2,
  leaseId: `lease-${n}`,
  fencingToken: 9_007_199_254_740 + n,
});

/** Every field the event codec carries, with bytes, Unicode and maps whose key order differs. */
function richEvents(): ResourceLeaseReplicationEvent[] {
  const t = 1_700_000_000_000;
  const item = {
    payload: payload("r1"),
    sequenceId: 1,
    attempt: 3,
    enqueuedAt: t,
    lastError: { message: "boom \n\u0000", code: "E1" },
    lastOwnershipToken: token(1),
    availableAt: t + 5_000,
  };
  const list: Omit<ResourceLeaseReplicationEvent, "sequenceNumber">[] = [
    { eventType: "Enqueue", timestamp: t + 1, item, peerId: "w-1", metadata: { "queue.pending": "1", a: "b" } },
    {
      eventType: "LeaseGranted",
      timestamp: t + 2,
      ownership: token(1),
      peerId: "w-1",
      principal: "CN=worker",
      leaseExpiresAt: t + 30_002,
      payload: payload("r1"),
      error: { message: "previous" },
      metadata: { z: "1", y: "2" },
    },
    { eventType: "Heartbeat", timestamp: t + 3, ownership: token(1), leaseExpiresAt: t + 40_000, metadata: {} },
    {
      eventType: "Failed",
      timestamp: t + 4,
      ownership: token(1),
      payload: payload("r1"),
      error: { message: "x", code: "c" },
      metadata: { "failure.requeued": "true" },
    },
    {
      eventType: "DrainSnapshot",
      timestamp: t + 5,
      items: [item, { ...item, sequenceId: 2 }],
      metadata: { "drain.count": "2" },
    },
    { eventType: "RestoreSnapshot", timestamp: t + 6, items: [], metadata: { "restore.count": "0" } },
    {
      eventType: "DeadLettered",
      timestamp: t + 7,
      item,
      error: { message: "dead" },
      metadata: { "deadletter.reason": "max" },
    },
  ];
  return list.map((e, i) => ({ ...e, sequenceNumber: i + 1 }));
}

async function startHub(dataDir: string) {
  const hub = new GrpcReplicationHub({
    store: new SqliteReplicationHubStore({ dataDir }),
    auth: { allowUnauthenticated: true },
    shutdownGraceMs: 100,
  });
  await hub.start();
  return hub;
}

function replicator(port: number) {
  const r = new GrpcResourceLeaseReplicator({
    hubs: [`127.0.0.1:${port}`],
    nodeId: "rich",
    connectTimeoutMs: 5000,
    ackTimeoutMs: 5000,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 200,
  });
  cleanup.push(() => r.close());
  return r;
}

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const status = (hub: GrpcReplicationHub): ReplicationHubSourceStatus => hub.sourceStatuses()[0]!;

describe("re-sent events against the SQLite store", () => {
  it("an event read back from the SQLite log equals its re-send (no false conflict after a hub restart); a changed one conflicts", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-resend-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    let hub = await startHub(dataDir);
    const first = replicator(hub.port);
    await first.publish(richEvents());
    await first.close();
    await hub.close();

    // A restarted hub compares with what it reads from the file, not with anything it kept in memory.
    hub = await startHub(dataDir);
    cleanup.push(() => hub.close());
    const again = replicator(hub.port);
    await again.publish(richEvents());
    expect(status(hub)).toMatchObject({ lastSequence: 7, duplicateEvents: 7, conflicts: 0 });
    await again.close();
    await until(() => !status(hub).connected);

    const changed = richEvents();
    changed[4] = { ...changed[4]!, items: [changed[4]!.items![1]!, changed[4]!.items![0]!] }; // same items, other order
    const third = replicator(hub.port);
    void third.publish(changed).catch(() => undefined);
    await until(() => third.lag().lastError?.code === GrpcReplicationErrorCodes.conflict);
    expect(third.lag().lastError?.metadata["replication.sequence"]).toBe("5");
    expect(status(hub).conflicts).toBeGreaterThanOrEqual(1);
  });
});
