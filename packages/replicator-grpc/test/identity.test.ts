import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata } from "@grpc/grpc-js";
import type { Logger } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import { FakeClock } from "@omnirelay/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  type GrpcReplicationHubOptions,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
} from "../src/index.js";
import { events, until } from "./helpers.js";
import { signHs256 } from "./jwt.js";
import { type HubTestPki, makeHubTestPki } from "./pki.js";
import { type RawEnd, rawClient, rawCredentials, rawPublish, Status } from "./raw.js";

let dir: string;
let pki: HubTestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "omnirelay-hub-identity-"));
  pki = await makeHubTestPki(dir, {
    clientCommonName: "billing-1",
    extra: [
      { name: "reporting-batch-job", commonName: "reporting-batch-job" },
      {
        name: "san-worker",
        commonName: "worker-7",
        subjectAltNames: ["DNS:billing-2", "URI:spiffe://omnirelay.test/node/billing-3"],
      },
    ],
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const fast = { connectTimeoutMs: 2000, ackTimeoutMs: 2000, reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 100 };

/** A hub on mutual TLS (client certificates required) unless `extra` says otherwise. */
async function mtlsHub(extra: Partial<GrpcReplicationHubOptions> = {}) {
  const store = new InMemoryReplicationHubStore();
  const hub = new GrpcReplicationHub({
    store,
    tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requireClientCertificate: true },
    shutdownGraceMs: 100,
    ...extra,
  });
  await hub.start();
  cleanup.push(() => hub.close());
  return { hub, store, address: `localhost:${hub.port}` };
}

function tlsOf(name: string) {
  const pair = pki.clients[name];
  if (!pair) throw new Error(`no test certificate ${name}`);
  return { ca: pki.ca, cert: pair.cert, key: pair.key };
}

/** A raw Publish stream authenticated with the certificate `name`. */
function rawAs(address: string, name: string | undefined, metadata?: Metadata) {
  const client = rawClient(address, rawCredentials(name ? tlsOf(name) : { ca: pki.ca }));
  cleanup.push(() => client.close());
  return rawPublish(client, metadata);
}

/** Waits for the hello's answer: the first ack, or the end of the stream. */
async function helloOutcome(s: ReturnType<typeof rawPublish>): Promise<RawEnd | { acked: number }> {
  return Promise.race([s.ended, s.nextAck(1).then(() => ({ acked: s.acks[0]! }))]);
}

function replicatorAs(address: string, name: string, nodeId: string) {
  const r = new GrpcResourceLeaseReplicator({ hubs: [address], nodeId, tls: tlsOf(name), ...fast });
  cleanup.push(() => r.close());
  return r;
}

function readerAs(address: string, name: string | undefined) {
  const reader = new GrpcReplicationHubClient({ address, tls: name ? tlsOf(name) : { ca: pki.ca } });
  cleanup.push(() => reader.close());
  return reader;
}

async function readAll(reader: GrpcReplicationHubClient, nodeId: string) {
  const out: number[] = [];
  for await (const e of reader.subscribe({ source: { nodeId, shard: "" }, follow: false })) out.push(e.sequenceNumber);
  return out;
}

const tags = (list: readonly { metadata: Readonly<Record<string, string>> }[]) =>
  list.map((e) => e.metadata["test.tag"]);
const billing1 = { nodeId: "billing-1", shard: "" };

describe("the hub binds a node id to the caller's identity", () => {
  it("finding 4: an impostor with another certificate of the CA is refused; nothing it sends is stored; the real node's events are stored and acknowledged", async () => {
    const { hub, store, address } = await mtlsHub();
    const real = replicatorAs(address, "billing-1", "billing-1");
    await real.publish(events(1, 3, "real"));

    // CN=reporting-batch-job says hello as billing-1 and sends forged events 4–6 right behind it.
    const impostor = rawAs(address, "reporting-batch-job");
    impostor.hello("billing-1", "", 6);
    impostor.batch(events(4, 6, "forged"));
    const outcome = await helloOutcome(impostor);
    expect(outcome).toMatchObject({
      code: Status.PERMISSION_DENIED,
      metadata: {
        "omnirelay-error-code": ErrorCodes.replicationHub.permissionDenied,
        "omnirelay-meta-replication.source": "billing-1",
      },
    });
    expect(tags(store.events(billing1))).toEqual(["real", "real", "real"]);

    // The real node's events 4–6 are stored (not acknowledged as "re-sends" of forged ones), on its first stream.
    await real.publish(events(4, 6, "real"));
    expect(real.lag()).toMatchObject({ ackedSequence: 6, pendingEvents: 0, connects: 1 });
    expect(tags(store.events(billing1))).toEqual(["real", "real", "real", "real", "real", "real"]);
    expect(hub.sourceStatuses()).toEqual([expect.objectContaining({ nodeId: "billing-1", headSequence: 6 })]);
    expect(hub.metrics()).toContain(
      'omnirelay_replication_hub_denied_calls_total{rpc="publish",reason="permission_denied"} 1',
    );
  });

  it("a caller may publish as its CN or a SAN DNS name; other names only through the publishers mapping", async () => {
    const { store, address } = await mtlsHub({
      auth: { publishers: { "spiffe://omnirelay.test/node/billing-3": ["billing-3"] } },
    });
    for (const nodeId of ["worker-7", "billing-2", "billing-3"]) {
      const s = rawAs(address, "san-worker");
      s.hello(nodeId);
      expect(await helloOutcome(s), nodeId).toEqual({ acked: 0 });
      s.call.end();
      await s.ended;
    }
    for (const nodeId of ["billing-1", "billing-4"]) {
      const s = rawAs(address, "san-worker");
      s.hello(nodeId);
      expect(await helloOutcome(s), nodeId).toMatchObject({ code: Status.PERMISSION_DENIED });
    }
    expect((await store.list()).map((s) => s.nodeId).sort()).toEqual(["billing-2", "billing-3", "worker-7"]);
  });

  it("selfGrant: false allows only the node ids the mapping names", async () => {
    const { address } = await mtlsHub({ auth: { selfGrant: false, publishers: { "billing-1": ["billing-1b"] } } });
    const own = rawAs(address, "billing-1");
    own.hello("billing-1");
    expect(await helloOutcome(own)).toMatchObject({ code: Status.PERMISSION_DENIED });
    const mapped = rawAs(address, "billing-1");
    mapped.hello("billing-1b");
    expect(await helloOutcome(mapped)).toEqual({ acked: 0 });
  });

  it("authorizes Subscribe, Checkpoint and ListSources: another identity is denied without a grant", async () => {
    const { hub, address } = await mtlsHub({
      auth: { subscribers: { "spiffe://omnirelay.test/node/billing-3": ["*"] } },
    });
    await replicatorAs(address, "billing-1", "billing-1").publish(events(1, 4, "real"));
    await replicatorAs(address, "reporting-batch-job", "reporting-batch-job").publish(events(1, 2, "own"));

    const reporting = readerAs(address, "reporting-batch-job");
    await expect(readAll(reporting, "billing-1")).rejects.toMatchObject({
      status: "permission-denied",
      code: ErrorCodes.replicationHub.permissionDenied,
    });
    // Denied before the source is looked up: an unknown source does not answer NOT_FOUND to a caller without a grant.
    await expect(readAll(reporting, "no-such-node")).rejects.toMatchObject({ status: "permission-denied" });
    await expect(reporting.checkpoint(billing1)).rejects.toMatchObject({ status: "permission-denied" });
    expect((await reporting.sources()).map((s) => s.nodeId)).toEqual(["reporting-batch-job"]);
    expect(await readAll(reporting, "reporting-batch-job")).toEqual([1, 2]); // a node reads its own stream

    const auditor = readerAs(address, "san-worker"); // granted "*" through its URI SAN
    expect(await readAll(auditor, "billing-1")).toEqual([1, 2, 3, 4]);
    expect(await auditor.checkpoint(billing1)).toMatchObject({ lastSequence: 4 });
    expect((await auditor.sources()).map((s) => s.nodeId)).toEqual(["billing-1", "reporting-batch-job"]);
    expect(await reporting.health()).toBe(true);
    expect(hub.metrics()).toContain(
      'omnirelay_replication_hub_denied_calls_total{rpc="subscribe",reason="permission_denied"} 2',
    );
    expect(hub.metrics()).toContain(
      'omnirelay_replication_hub_denied_calls_total{rpc="checkpoint",reason="permission_denied"} 1',
    );
  });

  it("refuses to build a hub that could not authenticate anyone, unless told the network is trusted", () => {
    const store = new InMemoryReplicationHubStore();
    const tlsOnly = { key: pki.server.key, cert: pki.server.cert };
    for (const options of [{ store }, { store, tls: tlsOnly }, { store, tls: { ...tlsOnly, ca: pki.ca } }]) {
      expect(() => new GrpcReplicationHub(options)).toThrow(
        expect.objectContaining({
          code: "resourcelease.options.invalid",
          metadata: { option: "auth.allowUnauthenticated" },
        }),
      );
    }
    expect(
      () => new GrpcReplicationHub({ store, auth: { jwt: { key: new Uint8Array(32), algorithms: ["HS256"] } } }),
    ).toThrow(expect.objectContaining({ metadata: { option: "auth.jwt" } }));
    expect(() => new GrpcReplicationHub({ store, tls: tlsOnly, auth: { jwt: { key: new Uint8Array(32) } } })).toThrow(
      expect.objectContaining({ metadata: { option: "auth.jwt.algorithms" } }),
    );
    for (const publishers of [{ x: ["no spaces"] }, { x: "billing-1" }, { " x": ["a"] }, { x: [""] }]) {
      expect(
        () => new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true, publishers } as never }),
        JSON.stringify(publishers),
      ).toThrow(expect.objectContaining({ metadata: { option: "auth.publishers" } }));
    }
    expect(
      () => new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true, subscribers: [] as never } }),
    ).toThrow(expect.objectContaining({ metadata: { option: "auth.subscribers" } }));
    expect(() => new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true }, busySourceWaitMs: -1 })).toThrow(
      expect.objectContaining({ metadata: { option: "busySourceWaitMs" } }),
    );
    expect(new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true } }).state).toBe("idle");
  });

  it("a JWT's subject is an identity: bound like a certificate name; a bad token is UNAUTHENTICATED", async () => {
    const secret = "a-test-secret-of-32-bytes-length!";
    const logs: unknown[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (obj) => logs.push(obj),
      error: (obj) => logs.push(obj),
    };
    const { store, address } = await mtlsHub({
      tls: { key: pki.server.key, cert: pki.server.cert },
      auth: { jwt: { key: new TextEncoder().encode(secret), algorithms: ["HS256"] } },
      logger,
    });
    const withToken = (token: string | undefined) => {
      const metadata = new Metadata();
      if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
      return rawAs(address, undefined, metadata);
    };
    const good = withToken(signHs256(secret, { sub: "billing-1" }));
    good.hello("billing-1");
    good.batch(events(1, 2));
    await good.nextAck(2);
    expect(good.acks).toEqual([0, 2]);

    const impostorToken = signHs256(secret, { sub: "reporting-batch-job" });
    const impostor = withToken(impostorToken);
    impostor.hello("billing-1");
    expect(await helloOutcome(impostor)).toMatchObject({ code: Status.PERMISSION_DENIED });
    const forged = withToken(signHs256("another-secret-another-secret-!!", { sub: "billing-1" }));
    forged.hello("billing-1");
    expect(await helloOutcome(forged)).toMatchObject({
      code: Status.UNAUTHENTICATED,
      metadata: { "omnirelay-error-code": "omnirelay.auth.invalid_token" },
    });
    const none = withToken(undefined);
    none.hello("billing-1");
    expect(await helloOutcome(none)).toMatchObject({
      code: Status.UNAUTHENTICATED,
      metadata: { "omnirelay-error-code": ErrorCodes.auth.required },
    });
    const anonymous = readerAs(address, undefined);
    await expect(readAll(anonymous, "billing-1")).rejects.toMatchObject({ status: "unauthenticated" });
    await expect(anonymous.checkpoint(billing1)).rejects.toMatchObject({ status: "unauthenticated" });
    await expect(anonymous.sources()).rejects.toMatchObject({ status: "unauthenticated" });
    expect(await anonymous.health()).toBe(true); // probes need no identity
    expect(store.events(billing1).map((e) => e.sequenceNumber)).toEqual([1, 2]);
    // The refusal is logged with the identity; the token itself never reaches a log line.
    expect(JSON.stringify(logs)).toContain("reporting-batch-job");
    expect(JSON.stringify(logs)).not.toContain(impostorToken.split(".")[2]!);

    // The dispatcher and reader side: `tls.bearerToken` (a function is asked per call, so a token can rotate).
    good.call.end();
    await good.ended;
    let issued = 0;
    const r = new GrpcResourceLeaseReplicator({
      hubs: [address],
      nodeId: "billing-1",
      tls: {
        ca: pki.ca,
        bearerToken: async () => {
          issued++;
          return signHs256(secret, { sub: "billing-1" });
        },
      },
      ...fast,
    });
    cleanup.push(() => r.close());
    await r.publish(events(3, 4));
    expect(store.events(billing1).map((e) => e.sequenceNumber)).toEqual([1, 2, 3, 4]);
    expect(issued).toBeGreaterThan(0);
    const reader = new GrpcReplicationHubClient({
      address,
      tls: { ca: pki.ca, bearerToken: signHs256(secret, { sub: "billing-1" }) },
    });
    cleanup.push(() => reader.close());
    expect(await readAll(reader, "billing-1")).toEqual([1, 2, 3, 4]);
    for (const bearerToken of ["", "has space", "line\nbreak", 42]) {
      expect(
        () => new GrpcReplicationHubClient({ address, tls: { ca: pki.ca, bearerToken: bearerToken as string } }),
        JSON.stringify(bearerToken),
      ).toThrow(expect.objectContaining({ metadata: { option: "tls.bearerToken" } }));
    }
  });

  it("a caller repeating a refused call cannot flood the log: every refusal counts, five lines a second are written", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (obj) => lines.push(obj as Record<string, unknown>),
      error: (obj) => lines.push(obj as Record<string, unknown>),
    };
    const clock = new FakeClock();
    const { hub, address } = await mtlsHub({
      tls: { key: pki.server.key, cert: pki.server.cert },
      auth: { jwt: { key: new TextEncoder().encode("a-test-secret-of-32-bytes-length!"), algorithms: ["HS256"] } },
      logger,
      clock,
    });
    const flooder = new GrpcReplicationHubClient({ address, tls: { ca: pki.ca, bearerToken: "not.a.jwt" } });
    cleanup.push(() => flooder.close());
    for (let i = 0; i < 30; i++) {
      await expect(flooder.sources()).rejects.toMatchObject({ code: ErrorCodes.auth.invalidToken });
    }
    expect(lines).toHaveLength(5);
    clock.advance(1000);
    await expect(flooder.sources()).rejects.toMatchObject({ status: "unauthenticated" });
    expect(lines).toHaveLength(6);
    expect(lines[5]).toMatchObject({ suppressed: 25, rpc: "list_sources", reason: "unauthenticated" });
    expect(hub.metrics()).toContain(
      'omnirelay_replication_hub_denied_calls_total{rpc="list_sources",reason="unauthenticated"} 31',
    );
  });

  it("refuses a second live stream for a node id even from an identity granted it", async () => {
    const { hub, store, address } = await mtlsHub({
      auth: { publishers: { "reporting-batch-job": ["billing-1"] } },
      busySourceWaitMs: 200,
    });
    const real = replicatorAs(address, "billing-1", "billing-1");
    await real.publish(events(1, 3, "real"));
    const other = rawAs(address, "reporting-batch-job");
    other.hello("billing-1");
    other.batch(events(4, 6, "forged"));
    expect(await helloOutcome(other)).toMatchObject({
      code: Status.ALREADY_EXISTS,
      metadata: { "omnirelay-error-code": ErrorCodes.replicationHub.sourceBusy },
    });
    await real.publish(events(4, 6, "real"));
    expect(real.lag()).toMatchObject({ ackedSequence: 6, connects: 1 });
    expect(tags(store.events(billing1))).toEqual(["real", "real", "real", "real", "real", "real"]);
    expect(hub.metrics()).toMatch(/^omnirelay_replication_hub_busy_refusals_total\{node_id="billing-1",shard=""\} 1$/m);
  });

  it("a node whose numbers someone else filled gets a conflict, never an acknowledgement of events the hub did not compare", async () => {
    // Suppose a second writer did get in while the node was away (here: a mapping that wrongly grants it billing-1).
    const { hub, store, address } = await mtlsHub({ auth: { publishers: { "reporting-batch-job": ["billing-1"] } } });
    const real = replicatorAs(address, "billing-1", "billing-1");
    await real.publish(events(1, 3, "real"));
    await real.close();
    await until(() => hub.sourceStatuses()[0]?.connected === false);
    const other = rawAs(address, "reporting-batch-job");
    other.hello("billing-1");
    other.batch(events(4, 6, "forged"));
    await other.nextAck(2);
    other.call.end();
    await other.ended;

    // The node comes back with its own events 4–6. The hub's checkpoint says 6; the client sends 4–6 anyway, the
    // hub compares them with what it stored, and answers a conflict.
    const back = replicatorAs(address, "billing-1", "billing-1");
    let settled = false;
    void back.publish(events(4, 6, "real")).then(
      () => (settled = true),
      () => (settled = true),
    );
    await until(() => back.lag().lastError?.code === ErrorCodes.replicationHub.conflict);
    expect(back.lag().lastError).toMatchObject({
      status: "aborted",
      metadata: expect.objectContaining({ "replication.sequence": "4", "replication.source": "billing-1" }),
    });
    expect(settled).toBe(false);
    expect(back.lag()).toMatchObject({ ackedSequence: 3, pendingEvents: 3 });
    expect(hub.metrics()).toMatch(
      /^omnirelay_replication_hub_conflicts_total\{node_id="billing-1",shard=""\} [1-9]\d*$/m,
    );
    // The hub keeps what it stored first; sorting it out is an operator's call.
    expect(tags(store.events(billing1))).toEqual(["real", "real", "real", "forged", "forged", "forged"]);
  });
});
