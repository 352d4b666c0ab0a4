import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Dispatcher } from "../../dispatcher/dispatcher.js";
import { ErrorCodes } from "../../errors/codes.js";
import { ResourceLeaseDispatcherComponent } from "../../resourcelease/component.js";
import { HttpInbound } from "./inbound.js";
import type { HttpInboundOptions } from "./inbound-options.js";

// The HTTP inbound's shared budget of request bodies still arriving (`maxBufferedBodyBytes`) and its connection cap,
// on raw sockets (127.0.0.1): many clients that each stay within `maxBodyBytes` and `requestTimeoutMs` cannot make
// the inbound hold more than the budget, a request over it is refused at once and its connection closed, and the
// budget comes back to zero however a body ends.

const KIB = 1024;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(options: Omit<HttpInboundOptions, "dispatcher">) {
  const dispatcher = new Dispatcher({ service: "body-budget" });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {});
  const inbound = new HttpInbound({ dispatcher, ...options });
  const { port } = await inbound.start();
  cleanups.push(async () => {
    await inbound.close({ graceMs: 50 });
    await component.close();
  });
  return { inbound, port };
}

/** A raw HTTP/1.1 exchange: what the server wrote, and whether it closed the connection. */
interface Raw {
  readonly socket: Socket;
  text(): string;
  closed(): boolean;
  write(data: string | Buffer): Promise<void>;
}

async function open(port: number, head: string): Promise<Raw> {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  let closed = false;
  socket.on("data", (d: Buffer) => {
    text += d.toString("latin1");
  });
  socket.on("close", () => {
    closed = true;
  });
  socket.on("error", () => {});
  cleanups.push(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const raw: Raw = {
    socket,
    text: () => text,
    closed: () => closed,
    write: (data) => new Promise<void>((resolve) => socket.write(data, () => resolve())),
  };
  await raw.write(head);
  return raw;
}

const post = (headers: string) => `POST / HTTP/1.1\r\nHost: x\r\nRpc-Procedure: resourcelease::stats\r\n${headers}\r\n`;
/** `n` bytes of valid JSON whitespace. */
const spaces = (n: number) => Buffer.alloc(n, 0x20);
const chunk = (data: Buffer) =>
  Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")]);

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("HTTP inbound: the body budget", () => {
  it("refuses a body that does not fit at once (429, Retry-After, connection closed) and gets back to zero", async () => {
    const { inbound, port } = await serve({ maxBodyBytes: 512 * KIB, maxBufferedBodyBytes: 1024 * KIB });
    // Two clients each send most of a body within maxBodyBytes, then stall.
    const stalled = await Promise.all(
      [0, 1].map(async () => {
        const raw = await open(port, post(`Content-Length: ${512 * KIB}\r\n`));
        await raw.write(Buffer.concat([Buffer.from("{}"), spaces(400 * KIB - 2)]));
        return raw;
      }),
    );
    await until(() => inbound.bufferedBodyBytes === 800 * KIB);
    // A third declares a body the budget has no room for: refused before its body is read.
    const third = await open(port, post(`Content-Length: ${512 * KIB}\r\n`));
    await until(() => third.closed());
    expect(third.text()).toMatch(/^HTTP\/1\.1 429 /);
    expect(third.text()).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(third.text()).toMatch(/\r\nconnection: close\r\n/i);
    expect(third.text()).toContain(`"code":"${ErrorCodes.rpc.requestBodyBudgetExhausted}"`);
    expect(third.text()).toContain('"status":"RESOURCE_EXHAUSTED"');
    expect(third.text()).toContain(`"limit":"${1024 * KIB}"`);
    // A small body still fits beside the stalled ones.
    const small = await open(port, post("Content-Length: 2\r\n"));
    await small.write("{}");
    await until(() => /\r\n\r\n\{/.test(small.text()));
    expect(small.text()).toMatch(/^HTTP\/1\.1 200 /);
    // One stalled client finishes its body (answered), the other goes away: nothing is held any more.
    await stalled[0]?.write(spaces(112 * KIB));
    await until(() => /^HTTP\/1\.1 200 /.test(stalled[0]?.text() ?? ""));
    stalled[1]?.socket.destroy();
    await until(() => inbound.bufferedBodyBytes === 0);
  });

  it("counts a chunked body as it arrives and cuts it when the budget runs out", async () => {
    const { inbound, port } = await serve({ maxBodyBytes: 512 * KIB, maxBufferedBodyBytes: 600 * KIB });
    const stalled = await open(port, post(`Content-Length: ${512 * KIB}\r\n`));
    await stalled.write(spaces(400 * KIB));
    await until(() => inbound.bufferedBodyBytes === 400 * KIB);
    const chunked = await open(port, post("Transfer-Encoding: chunked\r\n"));
    await chunked.write(chunk(spaces(100 * KIB)));
    await until(() => inbound.bufferedBodyBytes === 500 * KIB);
    await chunked.write(chunk(spaces(150 * KIB)));
    await until(() => chunked.closed());
    expect(chunked.text()).toMatch(/^HTTP\/1\.1 429 /);
    expect(chunked.text()).toContain(ErrorCodes.rpc.requestBodyBudgetExhausted);
    expect(inbound.bufferedBodyBytes).toBe(400 * KIB); // the refused body gave its bytes back
    stalled.socket.destroy();
    await until(() => inbound.bufferedBodyBytes === 0);
  });

  it("gets back to zero after an oversized body (413) and a request that timed out (408)", async () => {
    const { inbound, port } = await serve({
      maxBodyBytes: 64 * KIB,
      maxDiscardedBodyBytes: 128 * KIB,
      requestTimeoutMs: 300,
    });
    const oversized = await open(port, post(`Content-Length: ${100 * KIB}\r\n`));
    await oversized.write(spaces(100 * KIB));
    await until(() => oversized.text().length > 0);
    expect(oversized.text()).toMatch(/^HTTP\/1\.1 413 /);
    const slow = await open(port, post(`Content-Length: ${60 * KIB}\r\n`));
    await slow.write(spaces(30 * KIB));
    await until(() => inbound.bufferedBodyBytes === 30 * KIB);
    await until(() => slow.closed());
    expect(inbound.bufferedBodyBytes).toBe(0);
  });

  it("refuses an Expect: 100-continue request the budget has no room for before its body is sent", async () => {
    const { inbound, port } = await serve({ maxBodyBytes: 512 * KIB, maxBufferedBodyBytes: 512 * KIB });
    const stalled = await open(port, post(`Content-Length: ${512 * KIB}\r\n`));
    await stalled.write(spaces(300 * KIB));
    await until(() => inbound.bufferedBodyBytes === 300 * KIB);
    const expecting = await open(port, post(`Content-Length: ${300 * KIB}\r\nExpect: 100-continue\r\n`));
    await until(() => expecting.closed());
    expect(expecting.text()).toMatch(/^HTTP\/1\.1 429 /);
    expect(expecting.text()).not.toContain("100 Continue");
  });

  it("closes a connection over maxConnections at once", async () => {
    const { port } = await serve({ maxConnections: 2 });
    const first = await open(port, "");
    const second = await open(port, "");
    const third = await open(port, "");
    await until(() => third.closed());
    expect(third.text()).toBe("");
    expect(first.closed() || second.closed()).toBe(false);
  });

  it("refuses a bad budget or connection cap when the inbound is made", () => {
    const dispatcher = new Dispatcher({ service: "body-budget-options" });
    for (const options of [{ maxBufferedBodyBytes: 0 }, { maxConnections: 0 }, { maxConnections: 1.5 }]) {
      expect(() => new HttpInbound({ dispatcher, ...options })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });
});
