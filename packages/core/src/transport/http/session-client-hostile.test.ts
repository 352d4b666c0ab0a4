import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { ErrorCodes } from "../../errors/codes.js";
import type { OmniRelayError } from "../../errors/omnirelay-error.js";
import type { SessionServerFrame } from "../../resourcelease/session-messages.js";
import { openHttpSession, REFUSAL_BODY_MAX_BYTES } from "./session-client.js";

// The worker's end of an HTTP session against a hand-written hostile server on 127.0.0.1: a refusal whose body never
// ends, an upgrade never answered, and an `error` frame the server does not follow with a close.

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A raw TCP server; `onSocket` gets each connection (destroyed after the test). */
async function rawServer(onSocket: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onSocket(socket);
  });
  const url = await listen(server);
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
  });
  return { url, sockets };
}

function open(url: string, openTimeoutMs?: number) {
  const frames: SessionServerFrame[] = [];
  let opened = false;
  let closed: OmniRelayError | undefined;
  const target = {
    url: new URL(url),
    headers: {},
    maxFrameBytes: 1 << 20,
    ...(openTimeoutMs ? { openTimeoutMs } : {}),
  };
  const channel = openHttpSession(target, {
    namespace: "resourcelease",
    caller: "w1",
    onOpen: () => {
      opened = true;
    },
    onFrame: (frame) => frames.push(frame),
    onClose: (error) => {
      closed = error;
    },
  });
  cleanups.push(() => channel.close());
  return { channel, frames, opened: () => opened, closed: () => closed };
}

async function until(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("openHttpSession against a hostile server", () => {
  it("reads at most 64 KiB of a refusal whose body never ends, closes with its error and drops the connection", async () => {
    const block = Buffer.alloc(256 * 1024, 0x20);
    const chunk = Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from("\r\n")]);
    let written = 0;
    const server = await rawServer((s) => {
      s.once("data", () => {
        s.write(
          "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" +
            "rpc-error-code: omnirelay.test.refused\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        const pump = () => {
          while (s.writable) {
            written += chunk.length;
            if (!s.write(chunk)) return void s.once("drain", pump);
          }
        };
        pump();
      });
    });
    const session = open(server.url);
    await until(() => session.closed() !== undefined);
    expect(session.closed()).toMatchObject({ status: "unavailable", code: "omnirelay.test.refused" });
    expect(session.opened()).toBe(false);
    await until(() => server.sockets.size === 0); // the client dropped the connection
    expect(REFUSAL_BODY_MAX_BYTES).toBeLessThanOrEqual(64 * 1024);
    expect(written).toBeLessThan(64 * 1024 * 1024); // sent while the client read; never the endless rest
  });

  it("closes deadline-exceeded when the server takes the connection and never answers the upgrade", async () => {
    const server = await rawServer((s) => s.resume());
    const session = open(server.url, 100);
    await until(() => session.closed() !== undefined, 1000);
    expect(session.closed()).toMatchObject({
      status: "deadline-exceeded",
      code: ErrorCodes.rpc.deadlineExceeded,
      metadata: { timeoutMs: "100" },
    });
    await until(() => server.sockets.size === 0);
  });

  it("ends at an error frame with its parsed status, reads nothing after it, and closes the socket", async () => {
    const http = createHttpServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ noServer: true });
    let closedBy: number | undefined;
    http.on("upgrade", (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("close", (code) => {
          closedBy = code;
        });
        ws.send(JSON.stringify({ error: { status: "INTERNAL", code: "omnirelay.test.broken", message: "broken" } }));
        ws.send(JSON.stringify({ grants: [] })); // after the last frame
        ws.send(JSON.stringify({ stopped: true }));
      }),
    );
    const url = await listen(http);
    cleanups.push(() => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    });
    const session = open(url);
    await until(() => session.closed() !== undefined);
    expect(session.closed()).toMatchObject({ status: "internal", code: "omnirelay.test.broken", message: "broken" });
    await until(() => closedBy !== undefined); // the worker closed it, with a close frame
    expect(closedBy).toBe(1000);
    expect(session.frames).toHaveLength(1);
    expect(session.frames[0]!.error).toBeDefined();
  });
});
