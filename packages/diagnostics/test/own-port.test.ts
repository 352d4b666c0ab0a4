import { afterEach, describe, expect, it } from "vitest";
import { closeAll, onClose, openSse, payload, rpc, signJwt, startNode } from "./harness.js";

afterEach(closeAll);

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("control plane on its own port", () => {
  it("serves every endpoint, changes toggles by POST and answers unknown routes with 404 JSON", async () => {
    const node = await startNode();
    const server = await node.control.listen({ host: "127.0.0.1", port: 0 });
    onClose(() => server.close());
    const base = `${server.url}/omnirelay/control`;
    const levels: string[] = [];
    node.control.toggles.onLoggingChange((s) => levels.push(s.level));

    const ok = await post(`${base}/logging`, { level: "debug" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ level: "debug" });
    expect(await (await fetch(`${base}/logging`)).json()).toEqual({ level: "debug" });
    expect(levels).toEqual(["debug"]);

    const bad = await post(`${base}/logging`, { level: "chatty" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      status: "INVALID_ARGUMENT",
      code: "omnirelay.control.logging.level_invalid",
    });
    const notJson = await fetch(`${base}/tracing`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{oops",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).code).toBe("omnirelay.control.body_invalid");

    const tracing = await post(`${base}/tracing`, { enabled: false, samplingProbability: 0.1 });
    expect(await tracing.json()).toEqual({ enabled: false, samplingProbability: 0.1 });
    expect((await post(`${base}/tracing`, { samplingProbability: -1 })).status).toBe(400);

    const wrongMethod = await post(`${base}/queues`, {});
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET");

    await rpc(node.url, `${node.namespace}::enqueue`, { payload: payload("a") });
    const queues = (await (await fetch(`${base}/queues`)).json()) as any;
    expect(queues.queues[0]).toMatchObject({ namespace: node.namespace, pendingCount: 1, state: "running" });
    expect((await fetch(`${base}/backpressure`)).status).toBe(204);
    expect((await fetch(`${base}/lease-health`)).status).toBe(200);
    expect((await fetch(`${base}/replication/checkpoint`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok", mode: "live" });
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: "ok", mode: "ready", issues: [] });
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain(
      "# TYPE omnirelay_resourcelease_pending gauge",
    );

    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ status: "NOT_FOUND", code: "omnirelay.control.route_not_found" });
  });

  it("streams heartbeats and forgets a client that goes away", async () => {
    const node = await startNode({ sseHeartbeatIntervalMs: 30 });
    const server = await node.control.listen();
    onClose(() => server.close());
    const sse = await openSse(`${server.url}/omnirelay/control/backpressure/stream`);
    await sse.waitFor(/: heartbeat\n\n[\s\S]*: heartbeat\n\n/);
    expect(node.control.streamClientCount).toBe(1);
    sse.close();
    await expect.poll(() => node.control.streamClientCount, { timeout: 2000 }).toBe(0);
  });

  it("ends open streams and stops the server on close", async () => {
    const node = await startNode();
    const server = await node.control.listen();
    const sse = await openSse(`${server.url}/omnirelay/control/backpressure/stream`);
    await sse.waitFor(/: connected/);
    await node.control.close();
    await expect(sse.waitFor(/never/)).rejects.toThrow(/stream ended/);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    await expect(node.control.listen()).rejects.toMatchObject({ code: "omnirelay.control.closed" });
  });
});

describe("control plane auth", () => {
  const secret = "test-secret-that-is-long-enough-for-hs256!";

  it("lets admins POST, forbids other principals (403) and requires a principal (401)", async () => {
    const node = await startNode({
      auth: {
        principalBinding: { jwt: { key: new TextEncoder().encode(secret), algorithms: ["HS256"] } },
        admins: ["ops-admin"],
      },
    });
    const server = await node.control.listen();
    onClose(() => server.close());
    const url = `${server.url}/omnirelay/control/logging`;
    const bearer = (sub: string) => ({ authorization: `Bearer ${signJwt({ sub }, secret)}` });

    const anonymous = await post(url, { level: "debug" });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ status: "UNAUTHENTICATED", code: "omnirelay.auth.required" });

    const reader = await post(url, { level: "debug" }, bearer("dashboard"));
    expect(reader.status).toBe(403);
    expect(await reader.json()).toMatchObject({ status: "PERMISSION_DENIED", code: "omnirelay.auth.forbidden" });

    const forged = await post(
      url,
      { level: "debug" },
      { authorization: `Bearer ${signJwt({ sub: "ops-admin" }, "wrong")}` },
    );
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as any).code).toBe("omnirelay.auth.invalid_token");
    expect(node.control.toggles.logging.level).toBe("info");

    const admin = await post(url, { level: "debug" }, bearer("ops-admin"));
    expect(admin.status).toBe(200);
    expect(node.control.toggles.logging.level).toBe("debug");

    // Reads need a principal too once auth is configured (any principal may read); probes and scrapes never do.
    const anonymousRead = await fetch(url);
    expect(anonymousRead.status).toBe(401);
    expect(((await anonymousRead.json()) as any).code).toBe("omnirelay.auth.required");
    expect((await fetch(url, { headers: bearer("dashboard") })).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it("opens the reads to anonymous callers only with requireAuthentication: false", async () => {
    const key = new TextEncoder().encode(secret);
    const node = await startNode({
      auth: { principalBinding: { jwt: { key }, requireAuthentication: false }, admins: ["ops-admin"] },
    });
    const server = await node.control.listen();
    onClose(() => server.close());
    expect((await fetch(`${server.url}/omnirelay/control/queues`)).status).toBe(200);
    // Writes still need an admin.
    expect((await post(`${server.url}/omnirelay/control/logging`, { level: "warn" })).status).toBe(401);
    expect(node.control.toggles.logging.level).toBe("info");
  });

  it("requires a principal for reads with requireAuthentication: true, and trusts proxy headers only from proxies", async () => {
    const node = await startNode({
      auth: { principalBinding: { requireAuthentication: true, trustedProxies: ["127.0.0.1"] }, admins: ["ops-admin"] },
    });
    const server = await node.control.listen();
    onClose(() => server.close());
    const url = `${server.url}/omnirelay/control/queues`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { "x-client-principal": "dashboard" } })).status).toBe(200);
    const logging = `${server.url}/omnirelay/control/logging`;
    expect((await post(logging, { level: "warn" }, { "x-client-principal": "dashboard" })).status).toBe(403);
    expect((await post(logging, { level: "warn" }, { "x-client-principal": "ops-admin" })).status).toBe(200);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it("ignores principal headers from addresses that are not trusted proxies", async () => {
    const node = await startNode({
      auth: { principalBinding: { trustedProxies: ["10.9.9.9"] }, admins: ["ops-admin"] },
    });
    const server = await node.control.listen();
    onClose(() => server.close());
    const res = await post(
      `${server.url}/omnirelay/control/tracing`,
      { enabled: false },
      { "x-client-principal": "ops-admin" },
    );
    expect(res.status).toBe(401);
    expect(node.control.toggles.tracing.enabled).toBe(true);
  });
});
