import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { ResourceLeaseControlPlane } from "../src/index.js";
import { closeAll, mounts, signJwt } from "./harness.js";

// Issue #13, finding 6: a web page could drive the control plane. A browser sends a cross-origin POST with
// `Content-Type: text/plain` without a preflight, so every state-changing endpoint must insist on JSON and refuse
// foreign origins — on its own port and where it is mounted on the RPC port (HttpInbound's fallback).

afterEach(closeAll);

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: any;
}

/** A raw HTTP request (fetch would not let a test send `Origin` and `Sec-Fetch-Site` as a browser does). */
interface Sent {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

function send(url: string, { method, headers, body }: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // An explicit length: node's client sends a DELETE body unframed otherwise.
    const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const req = request(url, { method, headers: { ...headers, ...length }, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const json = { "content-type": "application/json" };
const evil = "http://evil.example";

describe.each(["RPC port", "own port"] as const)("state-changing control endpoints on the %s", (mount) => {
  it("the reproduction: a text/plain POST from a foreign origin is refused and changes nothing", async () => {
    const { node, bases } = await mounts();
    const res = await send(`${bases[mount]}/omnirelay/control/logging`, {
      method: "POST",
      headers: { "content-type": "text/plain", origin: evil },
      body: '{"level":"silent"}',
    });
    expect(res.status).toBe(403);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.json).toMatchObject({
      status: "PERMISSION_DENIED",
      code: "omnirelay.control.origin_forbidden",
      metadata: { origin: evil },
    });
    expect(res.headers["rpc-error-code"]).toBe("omnirelay.control.origin_forbidden");
    expect(node.control.toggles.logging.level).toBe("info");
  });

  it("needs application/json and a same-origin (or no) browser origin", async () => {
    const { node, bases } = await mounts({ allowedOrigins: ["https://ops.example.com"] });
    const base = bases[mount];
    const own = new URL(base).origin;
    const cases: Array<[string, Record<string, string>, number, string?]> = [
      ["text/plain from curl", { "content-type": "text/plain" }, 415, "omnirelay.control.unsupported_media_type"],
      ["a form post", { "content-type": "application/x-www-form-urlencoded" }, 415],
      ["multipart", { "content-type": "multipart/form-data; boundary=x" }, 415],
      ["no content type", {}, 415],
      ["application/jsonp", { "content-type": "application/jsonp" }, 415],
      ["JSON from a foreign origin", { ...json, origin: evil }, 403, "omnirelay.control.origin_forbidden"],
      ["JSON from the same host on another port", { ...json, origin: "http://127.0.0.1:1" }, 403],
      ["JSON from an opaque origin", { ...json, origin: "null" }, 403],
      ["JSON marked cross-site, no Origin", { ...json, "sec-fetch-site": "cross-site" }, 403],
      ["JSON marked same-site, no Origin", { ...json, "sec-fetch-site": "same-site" }, 403],
      ["JSON from the CLI (no Origin)", json, 200],
      ["JSON with a charset", { "content-type": "Application/JSON; charset=utf-8" }, 200],
      ["JSON from its own origin", { ...json, origin: own, "sec-fetch-site": "same-origin" }, 200],
      [
        "JSON from an allow-listed origin",
        { ...json, origin: "https://ops.example.com", "sec-fetch-site": "cross-site" },
        200,
      ],
      ["the same origin spelled differently", { ...json, origin: "HTTPS://OPS.EXAMPLE.COM:443" }, 200],
    ];
    for (const [name, headers, status, code] of cases) {
      const before = node.control.toggles.logging.level;
      const next = before === "debug" ? "warn" : "debug";
      const res = await send(`${base}/omnirelay/control/logging`, {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ level: next }),
      });
      expect({ name, status: res.status }).toEqual({ name, status });
      expect(res.headers["content-type"], name).toMatch(/^application\/json/);
      if (code) expect(res.json.code, name).toBe(code);
      expect(node.control.toggles.logging.level, name).toBe(status === 200 ? next : before);
    }
    const tracing = await send(`${base}/omnirelay/control/tracing`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "{}",
    });
    expect(tracing.status).toBe(415);
    expect(tracing.json).toMatchObject({
      status: "INVALID_ARGUMENT",
      code: "omnirelay.control.unsupported_media_type",
      metadata: { contentType: "text/plain" },
    });
    expect(node.control.toggles.tracing.enabled).toBe(true);
  });

  it("refuses every other state-changing method from a foreign origin too; reads stay readable", async () => {
    const { bases } = await mounts();
    const base = bases[mount];
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const foreign = await send(`${base}/omnirelay/control/logging`, {
        method: method,
        headers: { ...json, origin: evil },
        body: "{}",
      });
      expect({ method, status: foreign.status, code: foreign.json.code }).toEqual({
        method,
        status: 403,
        code: "omnirelay.control.origin_forbidden",
      });
      const local = await send(`${base}/omnirelay/control/logging`, { method, headers: json, body: "{}" });
      expect({ method, status: local.status }).toEqual({ method, status: 405 });
    }
    // A GET changes nothing, and without CORS headers a foreign page cannot read the answer.
    const read = await send(`${base}/omnirelay/control/logging`, { method: "GET", headers: { origin: evil } });
    expect(read.status).toBe(200);
    expect(read.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("checks the origin before authentication: an admin's credentials do not help a foreign page", async () => {
    const secret = "csrf-test-secret-that-is-long-enough-for-hs256";
    const { node, bases } = await mounts({
      auth: { principalBinding: { jwt: { key: new TextEncoder().encode(secret) } }, admins: ["ops-admin"] },
    });
    const admin = { ...json, authorization: `Bearer ${signJwt({ sub: "ops-admin" }, secret)}` };
    const url = `${bases[mount]}/omnirelay/control/logging`;
    const body = JSON.stringify({ level: "debug" });
    expect((await send(url, { method: "POST", headers: { ...admin, origin: evil }, body })).status).toBe(403);
    expect(
      (await send(url, { method: "POST", headers: { ...admin, "content-type": "text/plain" }, body })).status,
    ).toBe(415);
    expect(node.control.toggles.logging.level).toBe("info");
    expect((await send(url, { method: "POST", headers: admin, body })).status).toBe(200);
    expect(node.control.toggles.logging.level).toBe("debug");
  });

  it("answers every route and method with a Content-Type and nosniff", async () => {
    const { bases } = await mounts();
    const base = bases[mount];
    const paths = [
      "/omnirelay/control/lease-health",
      "/omnirelay/control/backpressure",
      "/omnirelay/control/replication/checkpoint",
      "/omnirelay/control/queues",
      "/omnirelay/control/logging",
      "/omnirelay/control/tracing",
      "/metrics",
    ];
    for (const path of paths) {
      for (const method of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]) {
        const headers = method === "GET" || method === "HEAD" ? {} : json;
        const body = method === "POST" ? "{}" : undefined;
        const res = await send(`${base}${path}`, { method: method, headers: headers, body });
        const where = `${method} ${path} -> ${res.status}`;
        expect(res.headers["content-type"], where).toMatch(/^(application\/json|text\/plain)/);
        // On the RPC port a POST outside /omnirelay/control/ is an RPC, answered by HttpInbound itself.
        const rpc = mount === "RPC port" && method === "POST" && !path.startsWith("/omnirelay/control/");
        if (!rpc) expect(res.headers["x-content-type-options"], where).toBe("nosniff");
      }
    }
  });
});

describe("allowedOrigins", () => {
  it("must list bare http(s) origins", () => {
    for (const allowedOrigins of [
      ["*"],
      ["ops.example.com"],
      ["https://ops.example.com/path"],
      ["ftp://ops.example.com"],
      [""],
      "https://ops.example.com",
    ]) {
      expect(() => new ResourceLeaseControlPlane({ allowedOrigins: allowedOrigins as never })).toThrow(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "allowedOrigins" } }),
      );
    }
    expect(() => new ResourceLeaseControlPlane({ allowedOrigins: ["http://localhost:3000/"] })).not.toThrow();
  });
});
