import { Agent, type IncomingHttpHeaders, request } from "node:http";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ResourceLeaseControlPlaneOptions } from "../src/index.js";
import { closeAll, mounts, onClose, signJwt } from "./harness.js";

// Probe findings: an oversized POST body was answered `Connection: keep-alive` and the connection then reset under
// the next request on it; a method a route does not serve was answered 405 with a hand-made body (status
// INVALID_ARGUMENT, no Rpc-Status / Rpc-Error-Code headers) instead of the table's UNIMPLEMENTED (HTTP 405).

afterEach(closeAll);

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly json: any;
  /** Whether the request went over a connection an earlier request had used. */
  readonly reusedSocket: boolean;
}

interface Sent {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly agent?: Agent;
}

function send(url: string, { method, headers = {}, body, agent }: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const req = request(url, { method, headers: { ...headers, ...length }, agent: agent ?? false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          json: text ? JSON.parse(text) : undefined,
          reusedSocket: req.reusedSocket,
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A keep-alive agent with one connection per origin, so consecutive requests share it when they may. */
function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  onClose(async () => agent.destroy());
  return agent;
}

const secret = "control-errors-secret-that-is-long-enough-for-hs256";
const admin = {
  "content-type": "application/json",
  authorization: `Bearer ${signJwt({ sub: "ops-admin" }, secret)}`,
};
const auth: ResourceLeaseControlPlaneOptions = {
  auth: { principalBinding: { jwt: { key: new TextEncoder().encode(secret) } }, admins: ["ops-admin"] },
};

describe.each(["own port", "RPC port"] as const)("control-plane errors (%s)", (mount) => {
  it("refuses a MiB-long body with Connection: close, and the next request on the agent is served", async () => {
    const { node, bases } = await mounts(auth);
    const url = `${bases[mount]}/omnirelay/control/logging`;
    const agent = keepAliveAgent();
    const big = await send(url, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ level: "x".repeat(2_000_000) }),
      agent,
    });
    expect(big.status).toBe(400);
    expect(big.json).toMatchObject({ status: "INVALID_ARGUMENT", code: "omnirelay.control.body_invalid" });
    expect(big.headers["rpc-error-code"]).toBe("omnirelay.control.body_invalid");
    expect(big.headers.connection).toBe("close");

    const next = await send(url, { method: "POST", headers: admin, body: '{"level":"debug"}', agent });
    expect(next.status).toBe(200);
    expect(next.json).toEqual({ level: "debug" });
    expect(node.control.toggles.logging.level).toBe("debug");
  });

  it("keeps the connection for a body read to its end, even a refused one", async () => {
    const { bases } = await mounts(auth);
    const url = `${bases[mount]}/omnirelay/control/tracing`;
    const agent = keepAliveAgent();
    const notJson = await send(url, { method: "POST", headers: admin, body: "{oops", agent });
    expect(notJson.status).toBe(400);
    expect(notJson.json.code).toBe("omnirelay.control.body_invalid");
    expect(notJson.headers.connection).toBe("keep-alive");
    const next = await send(url, { method: "POST", headers: admin, body: '{"enabled":false}', agent });
    expect(next.status).toBe(200);
    expect(next.reusedSocket).toBe(true);
  });

  it("answers a body whose Content-Length is far over the limit at once, then closes the connection", async () => {
    const { bases } = await mounts(auth);
    const { hostname, port } = new URL(bases[mount]);
    const socket = connect({ host: hostname, port: Number(port) });
    onClose(async () => void socket.destroy());
    const head = [
      "POST /omnirelay/control/logging HTTP/1.1",
      `Host: ${hostname}:${port}`,
      "Content-Type: application/json",
      `Authorization: ${admin.authorization}`,
      `Content-Length: ${64 * 1024 * 1024}`,
      "",
      "",
    ].join("\r\n");
    // Only the start of the declared 64 MiB is sent: the answer must not wait for the rest.
    socket.write(`${head}{"level":"`);
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("end", resolve);
      socket.once("close", () => resolve());
      socket.once("error", reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(text).toContain('"code":"omnirelay.control.body_invalid"');
  });

  it("answers a method the route does not serve with 405 UNIMPLEMENTED, the error headers and Allow", async () => {
    const { bases } = await mounts(auth);
    for (const [path, allow] of [
      ["/omnirelay/control/logging", "GET, POST"],
      ["/omnirelay/control/queues", "GET"],
    ] as const) {
      for (const method of ["PUT", "DELETE", "PATCH"]) {
        const res = await send(`${bases[mount]}${path}`, { method, headers: admin, body: "{}" });
        expect({ path, method, status: res.status, allow: res.headers.allow }).toEqual({
          path,
          method,
          status: 405,
          allow,
        });
        expect(res.headers["rpc-status"]).toBe("UNIMPLEMENTED");
        expect(res.headers["rpc-error-code"]).toBe("omnirelay.control.method_not_allowed");
        expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
        expect(res.json).toMatchObject({
          status: "UNIMPLEMENTED",
          code: "omnirelay.control.method_not_allowed",
          metadata: { method },
        });
      }
    }
  });
});
