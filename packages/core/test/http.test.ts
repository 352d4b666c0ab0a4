import { afterEach, describe, expect, it } from "vitest";
import { createShardResolver, ErrorCodes, isOmniRelayError } from "../src/index.js";
import { payload, startServer } from "./http-helpers.js";

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("resourcelease over HTTP: the wire contract", () => {
  it("serves every procedure with the documented shapes", async () => {
    server = await startServer();
    const s = server;
    const body = Buffer.from("hello").toString("base64");
    const enq = await s.post("resourcelease::enqueue", { payload: payload("a", { body, attributes: { k: "v" } }) });
    expect(enq.status).toBe(200);
    expect(enq.headers.get("rpc-transport")).toBe("http");
    expect(enq.json).toEqual({ sequenceId: 1, stats: { pendingCount: 1, activeLeaseCount: 0 } });
    const batch = await s.post("RESOURCELEASE::Enqueue", { Payloads: [payload("b"), payload("c")] }); // case-insensitive
    expect(batch.json).toMatchObject({ sequenceIds: [2, 3], duplicates: [false, false] });

    const lease = await s.post("resourcelease::lease", { peerId: "w1" });
    expect(lease.json).toMatchObject({
      payload: { resourceId: "a", body, attributes: { k: "v" } },
      sequenceId: 1,
      attempt: 1,
      ownerPeerId: "w1",
      ownershipToken: { sequenceId: 1, attempt: 1, fencingToken: 1 },
    });
    expect(Date.parse(lease.json.leaseExpiresAt)).toBeGreaterThan(Date.now());
    expect(Date.parse(lease.json.enqueuedAt)).toBeLessThanOrEqual(Date.now());
    const token = lease.json.ownershipToken;

    const hb = await s.post("resourcelease::heartbeat", { ownershipToken: token });
    expect(hb.json).toMatchObject({ success: true, remainingMs: 30_000 });
    expect(typeof hb.json.leaseExpiresAt).toBe("string");
    expect((await s.post("resourcelease::complete", { ownershipToken: token })).json).toEqual({ success: true });

    const two = await s.post("resourcelease::lease", { maxItems: 5 });
    expect(two.json.items).toHaveLength(2);
    const [b, c] = two.json.items;
    const failed = await s.post("resourcelease::fail", {
      ownershipToken: b.ownershipToken,
      reason: "bad",
      requeue: false,
    });
    expect(failed.json).toEqual({ success: true, outcome: "dead_lettered" });
    const completeMany = await s.post("resourcelease::complete", {
      ownershipTokens: [c.ownershipToken, b.ownershipToken],
    });
    expect(completeMany.json).toEqual({
      success: false,
      results: [
        { success: true },
        { success: false, code: ErrorCodes.resourceLease.leaseFenced, message: expect.any(String) },
      ],
    });
    const dead = await s.post("resourcelease::deadletters", {});
    expect(dead.json.items).toMatchObject([{ sequenceId: 2, reason: "failed", lastError: { message: "bad" } }]);
    expect((await s.post("resourcelease::redrive", {})).json).toEqual({ redrivenCount: 1 });
    expect((await s.post("resourcelease::lease", {})).json).toMatchObject({ sequenceId: 2, attempt: 1 });
    expect((await s.post("resourcelease::lease", {})).json).toEqual({});

    await s.post("resourcelease::enqueue", { payload: payload("d") });
    const drained = await s.post("resourcelease::drain", "");
    expect(drained.json.items).toMatchObject([{ sequenceId: 4, payload: { resourceId: "d" }, attempt: 1 }]);
    const restored = await s.post("resourcelease::restore", { items: drained.json.items });
    expect(restored.json).toEqual({ restoredCount: 1 });
    const stats = await s.post("resourcelease::stats", {});
    expect(stats.json).toMatchObject({ pendingCount: 1, activeLeaseCount: 1, deadLetterCount: 0, state: "running" });
  });

  it("maps every error to its status with the specific code in headers and body", async () => {
    server = await startServer({
      components: [{ queueOptions: { capacity: 2, leaseDurationMs: 60_000 } }],
    });
    const s = server;
    const expectError = async (
      p: Promise<{ status: number; headers: Headers; json: any }>,
      status: number,
      code: string,
    ) => {
      const r = await p;
      expect(r.status, code).toBe(status);
      expect(r.json.code).toBe(code);
      expect(r.headers.get("rpc-error-code")).toBe(code);
      expect(r.headers.get("rpc-status")).toBe(r.json.status);
    };
    await expectError(
      s.post("resourcelease::enqueue", { payload: { resourceType: "t" } }),
      400,
      ErrorCodes.resourceLease.payloadResourceIdRequired,
    );
    await expectError(s.post(undefined, {}), 400, "omnirelay.request.procedure_required");
    await expectError(s.post("nope::enqueue", {}), 501, "omnirelay.procedure.not_found");
    await expectError(
      s.post("resourcelease::heartbeat", {
        ownershipToken: { sequenceId: 9, attempt: 1, leaseId: "x", fencingToken: 99 },
      }),
      404,
      ErrorCodes.resourceLease.leaseUnknownToken,
    );
    await s.post("resourcelease::enqueue", { payload: payload("a") });
    const lease = await s.post("resourcelease::lease", {});
    await expectError(
      s.post("resourcelease::restore", {
        items: [{ payload: payload("z"), sequenceId: 1, enqueuedAt: new Date().toISOString() }],
      }),
      409,
      ErrorCodes.resourceLease.restoreDuplicateItem,
    );
    await s.post("resourcelease::complete", { ownershipToken: lease.json.ownershipToken });
    await expectError(
      s.post("resourcelease::complete", { ownershipToken: lease.json.ownershipToken }),
      412,
      ErrorCodes.resourceLease.leaseFenced,
    );
    await s.post("resourcelease::enqueue", { payloads: [payload("b"), payload("c")] });
    await expectError(
      s.post("resourcelease::enqueue", { payload: payload("d") }),
      429,
      ErrorCodes.resourceLease.queueFull,
    );
    await s.post("resourcelease::drain", {});
    await expectError(s.post("resourcelease::lease", {}), 503, ErrorCodes.resourceLease.draining);
    await expectError(
      s.post("resourcelease::lease", {}, { "rpc-ttl-ms": "abc" }),
      400,
      "omnirelay.request.invalid_header",
    );
  });

  it("a procedure that outlives Rpc-Ttl-Ms answers 504, and an unexpected exception answers a generic 500", async () => {
    server = await startServer();
    let aborted: unknown;
    server.dispatcher.registerJson("test::slow", async (_body, meta) => {
      await new Promise((resolve) => meta.signal.addEventListener("abort", resolve, { once: true }));
      aborted = meta.signal.reason;
      return {};
    });
    server.dispatcher.registerJson("test::broken", async () => {
      throw new Error("secret internal detail");
    });
    const slow = await server.post("test::slow", {}, { "rpc-ttl-ms": "100" });
    expect(slow.status).toBe(504);
    expect(slow.json).toMatchObject({ status: "DEADLINE_EXCEEDED", code: "omnirelay.deadline_exceeded" });
    expect((aborted as { code?: string })?.code).toBe("omnirelay.deadline_exceeded"); // the handler was told
    const broken = await server.post("test::broken", {});
    expect(broken.status).toBe(500);
    expect(broken.json).toMatchObject({ status: "INTERNAL", code: "omnirelay.internal" });
    expect(JSON.stringify(broken.json)).not.toContain("secret internal detail");
  });

  it("one stale-token case per mutating verb: a token from before an expiry is fenced", async () => {
    server = await startServer({ components: [{ queueOptions: { leaseDurationMs: 100 } }] });
    const client = server.client();
    await client.enqueue(payload("a"));
    const [old] = await client.lease();
    await new Promise((r) => setTimeout(r, 150));
    const [fresh] = await client.lease();
    expect(fresh!.ownershipToken.fencingToken).toBeGreaterThan(old!.ownershipToken.fencingToken);
    for (const call of [
      () => client.heartbeat(old!.ownershipToken),
      () => client.complete(old!.ownershipToken),
      () => client.fail(old!.ownershipToken),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(
        isOmniRelayError(err) &&
          err.status === "failed-precondition" &&
          err.code === ErrorCodes.resourceLease.leaseFenced,
      ).toBe(true);
    }
    await client.complete(fresh!.ownershipToken);
  });

  it("a long-poll lease answers empty before the caller's deadline, and a deadline is enforced", async () => {
    server = await startServer();
    const started = Date.now();
    const r = await server.post("resourcelease::lease", { waitMs: 5_000 }, { "rpc-ttl-ms": "300" });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({});
    expect(Date.now() - started).toBeLessThan(1_000);
    const client = server.client();
    const waiting = client.lease({ waitMs: 2_000 });
    await client.enqueue(payload("x"));
    expect((await waiting)[0]?.payload.resourceId).toBe("x");
  });

  it("serves shards as namespaces on one dispatcher, routed by the shard resolver", async () => {
    server = await startServer({ components: [{ namespace: "resourcelease.a" }, { namespace: "resourcelease.b" }] });
    const resolve = createShardResolver({ namespaces: ["resourcelease.a", "resourcelease.b"] });
    const keys = Array.from({ length: 20 }, (_, i) => `partition-${i}`);
    for (const key of keys) {
      const p = payload(key, { partitionKey: key });
      const { namespace, shardKey } = resolve(p);
      await server.client(namespace).enqueue(p, { shardKey });
    }
    const [a, b] = server.components.map((c) => c.queue.stats().pendingCount);
    expect(a! + b!).toBe(20);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    const same = resolve(payload("x", { partitionKey: "partition-3" }));
    expect(same).toEqual(resolve(payload("y", { partitionKey: "partition-3" })));
    expect(() => server!.dispatcher.registerJson("resourcelease.a::lease", async () => ({}))).toThrowError(
      /already registered/,
    );
  });

  it("health and readiness, and a graceful shutdown that finishes in-flight calls", async () => {
    server = await startServer();
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", mode: "live" });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const client = server.client();
    const inflight = client.lease({ waitMs: 300 });
    await new Promise((r) => setTimeout(r, 50));
    const closing = server.inbound.close({ graceMs: 2_000 });
    expect(await inflight).toEqual([]);
    await closing;
    expect(server.inbound.state).toBe("stopped");
  });
});
