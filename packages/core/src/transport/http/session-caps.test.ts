import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { Dispatcher } from "../../dispatcher/dispatcher.js";
import { ErrorCodes } from "../../errors/codes.js";
import { PrincipalBindingMiddleware } from "../../middleware/principal-binding.js";
import { item } from "../../worker/test-helpers.js";
import { HttpInbound } from "./inbound.js";
import { closeAll, session, sleep, stack } from "./session-harness.js";

afterEach(closeAll);

// Live-session caps of the HTTP inbound (`sessions.maxSessions`, `sessions.maxSessionsPerCaller`), on real
// WebSockets: a session over a cap is refused at open, and a session that ends gives its place back.

/** The HTTP answer to a refused session upgrade, with its JSON error body. */
const refused = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; body: { code?: string; metadata?: Record<string, string> } }>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/omnirelay/session/resourcelease`, { headers });
    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) });
        ws.terminate();
      });
    });
    ws.on("open", () => reject(new Error("the session was accepted")));
    ws.on("error", () => {});
  });

/** Retries `open` until it is accepted (a place given back is seen by the server a moment after the close). */
async function eventually<T>(open: () => Promise<T>, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await open();
    } catch (error) {
      if (Date.now() > end) throw error;
      await sleep(25);
    }
  }
}

describe("worker session caps over HTTP", () => {
  it("refuses a caller's session over maxSessionsPerCaller (scope caller), and takes it again once one ends", async () => {
    const s = await stack({ sessions: { maxSessionsPerCaller: 2, maxSessions: 10 } });
    // One anonymous address, whatever Rpc-Caller each session names: one caller.
    const a = await session(s.url, { "rpc-caller": "w1" });
    await session(s.url, { "rpc-caller": "w2" });
    const answer = await refused(s.url, { "rpc-caller": "w3" });
    expect(answer.status).toBe(429);
    expect(answer.body).toMatchObject({
      code: ErrorCodes.rpc.sessionTooMany,
      metadata: { limit: "2", scope: "caller" },
    });
    a.ws.close(); // a normal end gives the place back
    await eventually(() => session(s.url, { "rpc-caller": "w3" }));
    await expect(refused(s.url, { "rpc-caller": "w4" })).resolves.toMatchObject({ status: 429 });
  });

  it("gives the place back when a session's socket is killed", async () => {
    const s = await stack({ sessions: { maxSessionsPerCaller: 1 } });
    const a = await session(s.url);
    await expect(refused(s.url)).resolves.toMatchObject({ status: 429 });
    a.ws.terminate(); // no close frame (1006)
    const b = await eventually(() => session(s.url));
    // The new session works: it is granted what is enqueued.
    b.send({ credit: 1 });
    await s.client.enqueue(item(1));
    await b.until(() => b.grants().length === 1);
  });

  it("counts each principal on its own, and every caller against maxSessions (scope inbound)", async () => {
    const dispatcher = new Dispatcher({
      service: "session-caps",
      inboundMiddleware: [
        new PrincipalBindingMiddleware({ trustedProxies: ["127.0.0.1"], acceptClientCertificates: false }),
      ],
    });
    const s = await stack({ dispatcher, sessions: { maxSessionsPerCaller: 2, maxSessions: 3 } });
    await session(s.url, { "x-client-principal": "alice" });
    await session(s.url, { "x-client-principal": "alice" });
    await expect(refused(s.url, { "x-client-principal": "alice" })).resolves.toMatchObject({
      body: { metadata: { scope: "caller" } },
    });
    // bob has a share of his own, but the inbound holds at most 3 in all.
    await session(s.url, { "x-client-principal": "bob" });
    const answer = await refused(s.url, { "x-client-principal": "bob" });
    expect(answer.status).toBe(429);
    expect(answer.body).toMatchObject({
      code: ErrorCodes.rpc.sessionTooMany,
      metadata: { limit: "3", scope: "inbound" },
    });
  });

  it("holds at most 256 sessions of one anonymous address by default", async () => {
    const s = await stack();
    const opened = await Promise.all(Array.from({ length: 256 }, (_, i) => session(s.url, { "rpc-caller": `w${i}` })));
    expect(opened).toHaveLength(256);
    await expect(refused(s.url, { "rpc-caller": "one-more" })).resolves.toMatchObject({
      status: 429,
      body: { code: ErrorCodes.rpc.sessionTooMany, metadata: { limit: "256", scope: "caller" } },
    });
  });

  it("refuses bad caps when the inbound is made", () => {
    const dispatcher = new Dispatcher({ service: "session-caps-options" });
    for (const sessions of [{ maxSessions: 0 }, { maxSessionsPerCaller: 1.5 }, { maxSessions: -1 }]) {
      expect(() => new HttpInbound({ dispatcher, sessions })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });
});
