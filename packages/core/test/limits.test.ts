import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../src/index.js";
import { payload, startServer } from "./http-helpers.js";

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const portOf = (url: string) => Number(new URL(url).port);

/** A logger that keeps every entry. */
function recordingLogger() {
  const entries: Array<{ level: string; obj: unknown; msg: string | undefined }> = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      entries.push({ level, obj, msg });
    };
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { logger, entries };
}

/** Parses a raw HTTP/1.1 response: status line, lower-cased headers and the body. */
function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = "", body = ""] = raw.split("\r\n\r\n", 2);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/**
 * A naive client: writes the whole request before it reads anything (as many HTTP libraries do), then collects the
 * answer until the server closes. Resolves with the raw answer, or the socket error (EPIPE, ECONNRESET) it got.
 */
function naiveExchange(
  port: number,
  { head, body, chunked }: { head: string; body: Buffer; chunked: boolean },
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.pause();
    let answer = "";
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
    socket.write(
      chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}content-length: ${body.length}\r\n\r\n`,
    );
    if (chunked) socket.write(`${body.length.toString(16)}\r\n`);
    socket.write(body);
    socket.write(chunked ? "\r\n0\r\n\r\n" : "", (error) => {
      if (error) return;
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        answer += chunk;
      });
      socket.on("end", () => resolve(answer));
      socket.resume();
    });
  });
}

describe("oversized request bodies", () => {
  it("every one of 200 concurrent clients sending 6 MiB over a 64 KiB limit reads a 413, none a reset", async () => {
    server = await startServer({ maxBodyBytes: 64 * 1024 });
    const port = portOf(server.url);
    const body = Buffer.alloc(6 * 1024 * 1024, 0x61);
    const head = "POST / HTTP/1.1\r\nhost: x\r\nrpc-procedure: resourcelease::enqueue\r\n";
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => naiveExchange(port, { head, body, chunked: i % 2 === 1 })),
    );
    const statuses = new Map<string, number>();
    for (const raw of answers) {
      const key = raw.startsWith("error") ? raw : String(parseResponse(raw).status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 413: 200 });
    const first = parseResponse(answers[0]!);
    expect(first.headers.connection).toBe("close");
    expect(first.headers["rpc-error-code"]).toBe("omnirelay.request.too_large");
    expect(JSON.parse(first.body)).toMatchObject({
      status: "INVALID_ARGUMENT",
      code: "omnirelay.request.too_large",
      metadata: { field: "body", limit: "65536" },
    });
    expect(server.queue.stats().pendingCount).toBe(0);
    expect((await server.post("resourcelease::enqueue", { payload: payload("ok") })).status).toBe(200);
  });

  it("a body past maxDiscardedBodyBytes gets its 413 at once, and Expect: 100-continue gets it before sending", async () => {
    server = await startServer({ inbound: { maxBodyBytes: 1024, maxDiscardedBodyBytes: 64 * 1024 } });
    const port = portOf(server.url);
    // A client that reads while it sends sees the answer even though the rest of its body is never read.
    const status = await new Promise<number | string>((resolve) => {
      const req = request(
        { host: "127.0.0.1", port, method: "POST", agent: false, headers: { "rpc-procedure": "resourcelease::stats" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
      req.end(Buffer.alloc(1024 * 1024, 0x62));
    });
    expect(status).toBe(413);
    // With Expect: 100-continue the refusal comes before any body byte is sent.
    const answer = await new Promise<string>((resolve) => {
      const socket: Socket = connect(port, "127.0.0.1");
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        text += chunk;
      });
      socket.on("close", () => resolve(text));
      socket.write(
        "POST / HTTP/1.1\r\nhost: x\r\nrpc-procedure: resourcelease::enqueue\r\n" +
          "content-length: 1000000000\r\nexpect: 100-continue\r\n\r\n",
      );
    });
    expect(answer.startsWith("HTTP/1.1 413 ")).toBe(true);
    expect(answer).not.toContain("100 Continue");
    expect(answer).toContain('"code":"omnirelay.request.too_large"');
  });
});

describe("maxDiscardedBodyBytes below maxBodyBytes", () => {
  it("never refuses a body within maxBodyBytes", async () => {
    server = await startServer({ inbound: { maxBodyBytes: 200_000, maxDiscardedBodyBytes: 10 } });
    const attributes = { note: "x".repeat(3_000) };
    const r = await server.post("resourcelease::enqueue", {
      payloads: Array.from({ length: 40 }, (_, i) => payload(`p${i}`, { attributes })),
    });
    expect(r.status).toBe(200);
  });
});

describe("slow and vanishing clients", () => {
  it("1,000 idle connections from one address each get 408 with a code and are closed; others are served", async () => {
    const { logger, entries } = recordingLogger();
    server = await startServer({ inbound: { requestTimeoutMs: 400, logger } });
    const port = portOf(server.url);
    const stalls = [
      "POST / HTTP/1.1\r\nhost: x\r\n", // headers never finish
      "POST / HTTP/1.1\r\nhost: x\r\nrpc-procedure: resourcelease::enqueue\r\ncontent-length: 100\r\n\r\n{", // body never finishes
    ];
    const sockets = Array.from(
      { length: 1000 },
      (_, i) =>
        new Promise<string>((resolve) => {
          const socket = connect(port, "127.0.0.1");
          let text = "";
          socket.setEncoding("utf8");
          socket.on("data", (chunk: string) => {
            text += chunk;
          });
          socket.on("error", () => undefined);
          socket.on("close", () => resolve(text));
          socket.write(stalls[i % 2]!);
        }),
    );
    // Served while the idle connections are open.
    expect((await server.post("resourcelease::stats", {})).status).toBe(200);
    const deadline = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 15_000).unref());
    const answers = await Promise.race([Promise.all(sockets), deadline]);
    expect(answers).not.toBe("timeout");
    for (const raw of answers as string[]) {
      const r = parseResponse(raw);
      expect(r.status).toBe(408);
      expect(JSON.parse(r.body)).toMatchObject({ status: "DEADLINE_EXCEEDED", code: "omnirelay.request.timeout" });
    }
    expect(entries.filter((e) => e.level === "error")).toEqual([]);
  });

  it("a client that hangs up mid-call is logged at debug without a stack, never at error", async () => {
    const { logger, entries } = recordingLogger();
    server = await startServer({ inbound: { logger } });
    const port = portOf(server.url);
    const hangUps = [
      // mid-body
      "POST / HTTP/1.1\r\nhost: x\r\nrpc-procedure: resourcelease::enqueue\r\ncontent-length: 1000\r\n\r\n" + '{"pay',
      // waiting in a long poll
      'POST / HTTP/1.1\r\nhost: x\r\nrpc-procedure: resourcelease::lease\r\ncontent-length: 16\r\n\r\n{"waitMs":20000}',
    ];
    const gone = (): number => entries.filter((e) => e.msg?.includes("went away before its call was answered")).length;
    for (let i = 0; i < 20; i++) {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.write(hangUps[i % 2]!, () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.destroy();
    }
    for (let waited = 0; gone() < 20 && waited < 5_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(gone()).toBe(20);
    expect(entries.filter((e) => e.level !== "debug")).toEqual([]);
    expect(JSON.stringify(entries)).not.toMatch(/\bat .*\.js:\d+/); // no stack frames
    expect(server.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 0 });
  });
});
