import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes } from "@omnirelay/core";
import { eventsOfEveryType } from "@omnirelay/core/testing";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  type ReplicationHubSourceStatus,
} from "@omnirelay/replicator-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteReplicationHubStore } from "../src/sqlite-store.js";

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

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

// Every field the event codec carries (bytes, Unicode, NUL, maps, ids near 2^53, an empty item list): core's fixture.
describe("re-sent events against the SQLite store", () => {
  it("an event read back from the SQLite log equals its re-send (no false conflict after a hub restart); a changed one conflicts", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-resend-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const events = eventsOfEveryType();
    let hub = await startHub(dataDir);
    const first = replicator(hub.port);
    await first.publish(events);
    await first.close();
    await hub.close();

    // A restarted hub serves exactly what was published, read from the file, and compares re-sends with it.
    hub = await startHub(dataDir);
    cleanup.push(() => hub.close());
    const client = new GrpcReplicationHubClient({ address: `127.0.0.1:${hub.port}` });
    cleanup.push(() => client.close());
    const served = [];
    for await (const event of client.subscribe({ source: { nodeId: "rich", shard: "" }, follow: false })) {
      served.push(event);
    }
    expect(served).toEqual(events);
    const again = replicator(hub.port);
    await again.publish(eventsOfEveryType());
    expect(status(hub)).toMatchObject({ lastSequence: events.length, duplicateEvents: events.length, conflicts: 0 });
    await again.close();
    await until(() => !status(hub).connected);

    const changed = eventsOfEveryType();
    const drain = changed.findIndex((e) => e.eventType === "DrainSnapshot");
    const items = changed[drain]!.items!;
    changed[drain] = { ...changed[drain]!, items: [items[1]!, items[0]!] }; // same items, other order
    const third = replicator(hub.port);
    void third.publish(changed).catch(() => undefined);
    await until(() => third.lag().lastError?.code === ErrorCodes.replicationHub.conflict);
    expect(third.lag().lastError?.metadata["replication.sequence"]).toBe(String(drain + 1));
    expect(status(hub).conflicts).toBeGreaterThanOrEqual(1);
  });
});
