import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestPki, type TestPki } from "@omnirelay/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
} from "../src/index.js";
import { events, fast, until } from "./helpers.js";

let dir: string;
let pki: TestPki;
let hub: GrpcReplicationHub;
const store = new InMemoryReplicationHubStore();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "omnirelay-hub-tls-"));
  pki = await makeTestPki(dir, { clientCommonName: "tls-node" });
  hub = new GrpcReplicationHub({
    store,
    tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requireClientCertificate: true },
    shutdownGraceMs: 100,
  });
  await hub.start();
});

afterAll(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

describe("mutual TLS", () => {
  it("streams with a client certificate signed by the hub's CA", async () => {
    await using r = new GrpcResourceLeaseReplicator({
      hubs: [`localhost:${hub.port}`],
      nodeId: "tls-node",
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key },
      ...fast,
    });
    await r.publish(events(1, 3));
    expect(store.events({ nodeId: "tls-node", shard: "" }).map((e) => e.sequenceNumber)).toEqual([1, 2, 3]);
    await using reader = new GrpcReplicationHubClient({
      address: `localhost:${hub.port}`,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key },
    });
    expect(await reader.health()).toBe(true);
  });

  it("is refused with a certificate from another CA, and with plaintext", async () => {
    await using foreign = new GrpcResourceLeaseReplicator({
      hubs: [`localhost:${hub.port}`],
      nodeId: "intruder",
      tls: { ca: pki.ca, cert: pki.otherClient.cert, key: pki.otherClient.key },
      ...fast,
    });
    await using plain = new GrpcResourceLeaseReplicator({ hubs: [`localhost:${hub.port}`], nodeId: "plain", ...fast });
    const pending = [foreign.publish(events(1, 1)), plain.publish(events(1, 1))].map((p) => p.catch((e) => e));
    await until(() => foreign.lag().lastError !== undefined && plain.lag().lastError !== undefined);
    expect(foreign.lag().connects + plain.lag().connects).toBe(0);
    expect(await store.list()).toEqual([{ nodeId: "tls-node", shard: "" }]);
    await foreign.close();
    await plain.close();
    expect(await Promise.all(pending)).toEqual([
      expect.objectContaining({ code: "resourcelease.replication.grpc.closed" }),
      expect.objectContaining({ code: "resourcelease.replication.grpc.closed" }),
    ]);
  });
});
