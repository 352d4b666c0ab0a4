import { request } from "node:http";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import type { UnaryInboundMiddleware } from "../src/index.js";
import { PrincipalBindingMiddleware, RateLimitingMiddleware } from "../src/middleware/index.js";
import { payload, startServer } from "./http-helpers.js";

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const portOf = (url: string) => Number(new URL(url).port);

/** POST over a connection of its own (as 260 separate clients would). */
function post(
  port: number,
  procedure: string,
  { body, headers = {} }: { body: unknown; headers?: Record<string, string> },
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", agent: false, headers: { "rpc-procedure": procedure, ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text || "{}") }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  for (const started = Date.now(); !condition(); ) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("long polls", () => {
  it("260 idle long polls from one anonymous address cannot starve an authenticated worker's long poll", async () => {
    const secret = new TextEncoder().encode("a-test-secret-of-at-least-32-bytes!!");
    let arrived = 0;
    const counting: UnaryInboundMiddleware = {
      handle: (request, next) => {
        arrived++;
        return next(request);
      },
    };
    server = await startServer({
      // Defaults everywhere: a long-poll pool of 256, 32 per caller, a quarter kept for authenticated callers.
      middleware: [
        counting,
        // Anonymous callers may lease here: the flood is anonymous, the worker is not.
        new PrincipalBindingMiddleware({ jwt: { key: secret }, requireAuthentication: false }),
        new RateLimitingMiddleware(),
      ],
    });
    const port = portOf(server.url);
    let answered = 0;
    const idle = Array.from({ length: 260 }, () =>
      post(port, "resourcelease::lease", { body: { waitMs: 20_000 } }).then((r) => {
        answered++;
        return r;
      }),
    );
    await until(() => arrived === 260, "260 polls to arrive");
    // Those over the caller's share answer at once, empty: they are not refused and do not wait.
    await until(() => answered === 228, "the polls over the share to be answered");
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("worker-1")
      .setExpirationTime("5m")
      .sign(secret);
    const worker = post(port, "resourcelease::lease", {
      body: { waitMs: 20_000 },
      headers: { authorization: `Bearer ${token}` },
    });
    await until(() => arrived === 261, "the worker's poll to arrive");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(228); // the worker's poll waits too
    await server.post("resourcelease::enqueue", {
      payloads: Array.from({ length: 300 }, (_, i) => payload(`item-${i}`)),
    });
    const got = await worker;
    expect(got.status).toBe(200);
    expect(got.json.ownershipToken).toBeDefined();
    const results = await Promise.all(idle);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.json.ownershipToken !== undefined)).toHaveLength(32);
    const leases = server.queue.snapshot().active;
    expect(leases.filter((lease) => lease.principal === "worker-1")).toHaveLength(1);
  });

  it("a waitMs above the queue's maxWaitMs is cut to it, not refused; a malformed one is 400", async () => {
    server = await startServer({ components: [{ queueOptions: { maxWaitMs: 200 } }] });
    const s = server;
    const started = Date.now();
    const answers = await Promise.all(
      [201, 3_600_000, 1e12, Number.MAX_SAFE_INTEGER].map((waitMs) => s.post("resourcelease::lease", { waitMs })),
    );
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.json).toEqual({});
    }
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(5_000);
    // A decimal string is an integer on the JSON wire (proto3 JSON writes int64 as strings); "x" is not.
    for (const waitMs of [-1, 1.5, "x", "-5", 2 ** 53, 1e300]) {
      const r = await s.post("resourcelease::lease", { waitMs });
      expect(r.status, String(waitMs)).toBe(400);
      expect(r.json).toMatchObject({ code: "resourcelease.argument.invalid", metadata: { field: "waitMs" } });
    }
  });
  it("a stopping dispatcher answers waiting long polls at once, empty, instead of sitting out its grace", async () => {
    server = await startServer({ components: [{ queueOptions: { maxWaitMs: 60_000 } }] });
    const s = server;
    const port = portOf(s.url);
    // Two workers waiting a minute each, on connections of their own.
    const polls = [0, 1].map(() => post(port, "resourcelease::lease", { body: { waitMs: 60_000 } }));
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // both are waiting in the queue by then
    const started = Date.now();
    const stopped = s.dispatcher.stop({ graceMs: 15_000 });
    const answers = await Promise.all(polls);
    for (const r of answers) expect(r).toEqual({ status: 200, json: {} });
    await stopped;
    server = undefined;
    // Without it the drain waited for the polls: the whole grace (15 s here), or their minute.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
