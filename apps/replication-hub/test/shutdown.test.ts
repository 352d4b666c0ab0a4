import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { GrpcResourceLeaseReplicator } from "@omnirelay/replicator-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { hubHttp, startHubProcess } from "./hub-process.js";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const events = (from: number, to: number): ResourceLeaseReplicationEvent[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    sequenceNumber: from + i,
    eventType: "Enqueue" as const,
    timestamp: 1_700_000_000_000 + from + i,
    metadata: {},
  }));

describe("omnirelay-hub shutdown", () => {
  it("on SIGTERM drains its gRPC and HTTP sides, exits 0, and leaves its logs closed for the next hub", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "omnirelay-hub-stop-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    // Plaintext on loopback, so the hub must be told its network is trusted.
    const extraArgs = ["--allow-unauthenticated"];
    const hub = await startHubProcess({ dataDir, extraArgs });
    cleanup.push(() => hub.child.kill("SIGKILL"));
    const replicator = new GrpcResourceLeaseReplicator({ hubs: [`127.0.0.1:${hub.grpcPort}`], nodeId: "node-a" });
    await replicator.publish(events(1, 5));
    await replicator.close();
    expect((await hubHttp(hub.httpPort, "/healthz")).status).toBe(200);

    hub.child.kill("SIGTERM");
    expect(await hub.exited).toBe(0);
    await expect(hubHttp(hub.httpPort, "/healthz")).rejects.toThrow();

    // The same ports and data directory: only free if the first hub closed its sockets and its SQLite logs.
    const again = await startHubProcess({ dataDir, extraArgs, grpcPort: hub.grpcPort, httpPort: hub.httpPort });
    cleanup.push(() => again.child.kill("SIGKILL"));
    const { sources } = JSON.parse((await hubHttp(again.httpPort, "/sources")).body) as {
      sources: Array<{ nodeId: string; lastSequence: number }>;
    };
    expect(sources).toEqual([expect.objectContaining({ nodeId: "node-a", lastSequence: 5 })]);
  });
});
