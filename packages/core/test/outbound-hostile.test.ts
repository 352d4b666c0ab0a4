import type { IncomingMessage, ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, HttpOutbound, OmniRelayError, ResourceLeaseClient } from "../src/index.js";
import { parseStatus } from "../src/wire/index.js";
import { closeHostile, keepClient, listenHostile } from "./hostile-http.js";

// HttpOutbound facing a broken or hostile server (a hand-written node:http server on 127.0.0.1): whatever it answers,
// the call settles with an OmniRelayError of the right types, in time, and nothing is thrown outside the call.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

afterEach(closeHostile);

/** A server that reads each request whole, then lets `handler` answer. */
async function hostile(handler: Handler): Promise<string> {
  return listenHostile((req, res) => {
    req.resume();
    req.on("end", () => handler(req, res));
  });
}

function clientOf(url: string, outbound: { maxResponseBytes?: number } = {}): ResourceLeaseClient {
  return keepClient(new ResourceLeaseClient({ outbound: new HttpOutbound({ url, ...outbound }), timeoutMs: 1_000 }));
}

/** How a promise settles within `ms`: its error, its value, or `pending`. */
async function settled(call: Promise<unknown>, ms = 2_000): Promise<OmniRelayError | { value: unknown } | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  try {
    return await Promise.race([call.then((value) => ({ value })), late]);
  } catch (error) {
    return error as OmniRelayError;
  } finally {
    clearTimeout(timer);
  }
}

function answer(status: number, body: string, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(body);
  };
}

describe("HttpOutbound: error bodies of the wrong types", () => {
  it.each([
    ["true", "true"],
    ["an object", "{}"],
    ["a list", "[1]"],
  ])("a 500 whose body status is %s rejects (no uncaught TypeError, no hang)", async (_name, status) => {
    const url = await hostile(answer(500, `{"status":${status},"code":"x.y","message":"m"}`));
    const outcome = await settled(clientOf(url).stats());
    expect(outcome).toBeInstanceOf(OmniRelayError);
    const error = outcome as OmniRelayError;
    expect([error.code, error.message]).toEqual(["x.y", "m"]);
    expect(typeof error.status).toBe("string");
  });

  it("a bad body status falls back to the Rpc-Status header, then to the HTTP status", async () => {
    const withHeader = await hostile(answer(503, '{"status":true}', { "rpc-status": "UNAVAILABLE" }));
    expect(((await settled(clientOf(withHeader).stats())) as OmniRelayError).status).toBe("unavailable");
    const bare = await hostile(answer(404, '{"status":{"x":1}}'));
    expect(((await settled(clientOf(bare).stats())) as OmniRelayError).status).toBe("not-found");
  });

  it("code, message and metadata of the wrong types are not taken: headers and the HTTP status stand in", async () => {
    const url = await hostile(
      answer(500, '{"status":"INTERNAL","code":42,"message":{"a":1},"metadata":"str"}', {
        "rpc-error-code": "from.header",
      }),
    );
    const error = (await settled(clientOf(url).stats())) as OmniRelayError;
    expect(error).toBeInstanceOf(OmniRelayError);
    expect(error.status).toBe("internal");
    expect(error.code).toBe("from.header");
    expect(error.message).toBe("HTTP 500");
    expect(error.metadata).toEqual({});
  });

  it("metadata is taken only as an object of strings", async () => {
    const mixed = await hostile(answer(412, '{"code":"c","message":"m","metadata":{"a":"1","b":2}}'));
    expect(((await settled(clientOf(mixed).stats())) as OmniRelayError).metadata).toEqual({});
    const list = await hostile(answer(412, '{"code":"c","message":"m","metadata":["a"]}'));
    expect(((await settled(clientOf(list).stats())) as OmniRelayError).metadata).toEqual({});
    const good = await hostile(answer(412, '{"code":"c","message":"m","metadata":{"owner":"b"}}'));
    const error = (await settled(clientOf(good).stats())) as OmniRelayError;
    expect([error.status, error.code, error.metadata]).toEqual(["failed-precondition", "c", { owner: "b" }]);
  });

  it("parseStatus and OmniRelayError.fromWire are total: values of any type never throw", () => {
    for (const value of [true, {}, [], null, undefined, Symbol("s"), 1n]) expect(parseStatus(value)).toBeUndefined();
    expect(parseStatus(" invalid_argument ")).toBe("invalid-argument");
    expect(parseStatus(14)).toBe("unavailable");
    const error = OmniRelayError.fromWire({ status: [], code: 7, message: { a: 1 }, metadata: { a: 1 } });
    expect([error.status, error.code, error.message, error.metadata]).toEqual([
      "unknown",
      ErrorCodes.rpc.unknown,
      "Unknown error.",
      {},
    ]);
  });
});

describe("HttpOutbound: maxResponseBytes", () => {
  /** Answers 200 with an endless chunked body of JSON whitespace, until the client goes away. */
  const endless: Handler = (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const block = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!res.destroyed && res.write(block)) {}
      if (!res.destroyed) res.once("drain", pump);
    };
    res.on("close", () => res.removeAllListeners("drain"));
    pump();
  };

  it("an endless body is cut at maxResponseBytes: the call rejects with omnirelay.response.too_large", async () => {
    const url = await hostile(endless);
    const started = Date.now();
    const error = (await settled(clientOf(url, { maxResponseBytes: 256 * 1024 }).stats())) as OmniRelayError;
    expect(error).toBeInstanceOf(OmniRelayError);
    expect([error.status, error.code, error.metadata]).toEqual([
      "resource-exhausted",
      ErrorCodes.rpc.responseTooLarge,
      { limit: String(256 * 1024) },
    ]);
    expect(Date.now() - started).toBeLessThan(900); // well before the call's 1 s deadline
  });

  it("a Content-Length past the limit is refused before the body is read (the default limit is 64 MiB)", async () => {
    const declared: Handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": 64 * 1024 * 1024 + 1 });
      res.write("{"); // and nothing more
    };
    const url = await hostile(declared);
    const error = (await settled(clientOf(url).stats(), 800)) as OmniRelayError;
    expect(error).toBeInstanceOf(OmniRelayError);
    expect([error.code, error.metadata.limit]).toEqual([ErrorCodes.rpc.responseTooLarge, String(64 * 1024 * 1024)]);
  });

  it("an error body past the limit is refused too; an answer within it is read", async () => {
    const big = await hostile(answer(500, JSON.stringify({ code: "c", message: "x".repeat(4096) })));
    const error = (await settled(clientOf(big, { maxResponseBytes: 1024 }).stats())) as OmniRelayError;
    expect(error.code).toBe(ErrorCodes.rpc.responseTooLarge);
    const fine = await hostile(answer(200, `${" ".repeat(900)}{"pendingCount":3,"activeLeaseCount":1}`));
    const stats = (await settled(clientOf(fine, { maxResponseBytes: 1024 }).stats())) as { value: unknown };
    expect(stats.value).toMatchObject({ pendingCount: 3, activeLeaseCount: 1 });
  });

  it("maxResponseBytes must be a positive integer", () => {
    for (const maxResponseBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => new HttpOutbound({ url: "http://127.0.0.1:1", maxResponseBytes })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });
});
