import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { type Client, status as GrpcStatus, Metadata } from "@grpc/grpc-js";
import { Dispatcher, ErrorCodes, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  ResourceLeaseServiceService,
  SessionServerFrame,
} from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound } from "../src/index.js";
import { type RawAnswer as Answer, Cleanup, rawBytesCaller } from "./harness.js";

// Request bytes written by hand, so the tests can send what no well-behaved client would: string fields that are not
// UTF-8, a map key `__proto__`, messages over the inbound's limit. Where HTTP has the same fault, its answer is the
// reference.

const identity = (b: Buffer) => b;
const utf8 = (text: string) => Buffer.from(text, "utf8");

async function stack(cleanup: Cleanup, maxMessageBytes?: number) {
  const dispatcher = new Dispatcher({ service: "strict" });
  const component = cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, {}));
  const inbound = cleanup.add(new GrpcInbound({ dispatcher, ...(maxMessageBytes ? { maxMessageBytes } : {}) }));
  const http = cleanup.add(new HttpInbound({ dispatcher }));
  const { port } = await inbound.start();
  const httpPort = (await http.start()).port;
  const { call, client } = rawBytesCaller(cleanup, port);
  const httpCall = async (verb: string, body: string | Buffer) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/`, {
      method: "POST",
      headers: { "rpc-procedure": `resourcelease::${verb}`, "content-type": "application/json" },
      body,
    });
    return { status: res.status, code: res.headers.get("rpc-error-code") };
  };
  return { queue: component.queue, call, httpCall, client };
}

/** ItemPayload: the four required strings (the id as text or raw bytes) and attributes. */
function payload(w: BinaryWriter, id: string | Uint8Array, attributes: Array<[string, string]> = []): BinaryWriter {
  w.uint32(10).string("table").uint32(18);
  if (typeof id === "string") w.string(id);
  else w.bytes(id);
  w.uint32(26).string("p").uint32(34).string("json");
  for (const [key, value] of attributes) w.uint32(50).fork().uint32(10).string(key).uint32(18).string(value).join();
  return w;
}

const enqueue = (id: string | Uint8Array, attributes?: Array<[string, string]>, body?: Uint8Array) => {
  const w = new BinaryWriter().uint32(10).fork();
  payload(w, id, attributes);
  if (body) w.uint32(42).bytes(body);
  return w.join().finish();
};

/** A Session call with raw frames: what comes back is decoded, and the final status kept. */
function rawSession(client: Client) {
  const method = ResourceLeaseServiceService.session;
  const stream = client.makeBidiStreamRequest(method.path, identity, identity, new Metadata());
  const frames: SessionServerFrame[] = [];
  stream.on("data", (bytes: Buffer) => frames.push(SessionServerFrame.decode(bytes)));
  stream.on("error", () => {});
  const status = new Promise<{ code: number; metadata: Metadata }>((resolve) => stream.on("status", resolve));
  return { write: (bytes: Uint8Array) => stream.write(Buffer.from(bytes)), frames, status };
}

/** SessionClientFrame { fail: [{ id: 1, reason }] }, the reason as raw bytes. */
const failFrame = (reason: Uint8Array) =>
  new BinaryWriter().uint32(26).bytes(new BinaryWriter().uint32(8).int64(1).uint32(26).bytes(reason).finish()).finish();

const code = (a: Answer) => a.error?.metadata.get("omnirelay-error-code")[0];
const meta = (a: Answer, key: string) => a.error?.metadata.get(`omnirelay-meta-${key}`)[0];
const httpEnqueue = (id: string, attributes = "{}") =>
  `{"payload":{"resourceType":"table","resourceId":${JSON.stringify(id)},"partitionKey":"p","payloadEncoding":"json","attributes":${attributes}}}`;

describe("strict request decoding over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("refuses a string field that is not UTF-8 with malformed_protobuf (HTTP: 400), and stores nothing", async () => {
    const { queue, call, httpCall } = await stack(cleanup);
    const bad = [
      Uint8Array.of(0x61, 0xff, 0x62), // a stray byte
      Uint8Array.of(0x61, 0xed, 0xa0, 0x80, 0x62), // an encoded lone surrogate (CESU-8)
      Uint8Array.of(...utf8("x".repeat(40)), 0xc3), // a cut sequence, past the reader's ASCII fast path
    ];
    for (const id of bad) {
      const answer = await call("Enqueue", enqueue(id));
      expect(answer.error?.code, Buffer.from(id).toString("hex")).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(code(answer)).toBe(ErrorCodes.rpc.requestMalformedProtobuf);
      const [head, tail] = httpEnqueue("\u0000").split("\\u0000") as [string, string];
      expect((await httpCall("enqueue", Buffer.concat([utf8(head), id, utf8(tail)]))).status).toBe(400);
    }
    expect(queue.stats().pendingCount).toBe(0);
    // Well-formed text of every width comes through exactly, a leading U+FEFF included.
    const ids = ["é", "\uFEFFbom", "😀".repeat(20), `${"x".repeat(40)}ü`];
    for (const id of ids) expect((await call("Enqueue", enqueue(id))).error).toBeUndefined();
    expect((await queue.drain()).map((i) => i.payload.resourceId)).toEqual(ids);
  });

  it("ends a session whose frame holds a string that is not UTF-8: frame_invalid, reason malformed_protobuf", async () => {
    const { client } = await stack(cleanup);
    const s = rawSession(client);
    s.write(failFrame(Uint8Array.of(0x62, 0x61, 0x64, 0xff)));
    const ended = await s.status;
    expect(ended.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(ended.metadata.get("omnirelay-error-code")).toEqual([ErrorCodes.rpc.sessionFrameInvalid]);
    expect(ended.metadata.get("omnirelay-meta-reason")).toEqual([ErrorCodes.rpc.requestMalformedProtobuf]);
  });

  it("refuses a map key __proto__ as HTTP does (resourcelease.payload.invalid), and keeps __proto__ as a value", async () => {
    const { queue, call, httpCall } = await stack(cleanup);
    const http = await httpCall("enqueue", httpEnqueue("h", '{"__proto__":"evil","k":"v"}'));
    expect([http.status, http.code]).toEqual([400, "resourcelease.payload.invalid"]);
    const answer = await call(
      "Enqueue",
      enqueue("g", [
        ["__proto__", "evil"],
        ["k", "v"],
      ]),
    );
    expect(answer.error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(code(answer)).toBe(http.code);
    expect(meta(answer, "field")).toBe("payload.attributes");
    const batch = new BinaryWriter();
    payload(batch.uint32(10).fork(), "b1").join();
    payload(batch.uint32(10).fork(), "b2", [["__proto__", "x"]]).join();
    expect(code(await call("EnqueueBatch", batch.finish()))).toBe("resourcelease.payload.invalid");
    // FailRequest.metadata, the other request map: refused before the (unknown) token is looked up.
    const fail = new BinaryWriter().uint32(10).fork().uint32(8).int64(1).uint32(16).int64(1).uint32(26).string("l");
    fail.uint32(32).int64(1).join().uint32(50).fork().uint32(10).string("__proto__").uint32(18).string("x").join();
    const failed = await call("Fail", fail.finish());
    expect(failed.error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(meta(failed, "field")).toBe("metadata");
    expect(queue.stats().pendingCount).toBe(0);
    // `__proto__` anywhere else is text like any other.
    const ok = await call("Enqueue", enqueue("__proto__", [["k", "__proto__"]]));
    expect(ok.error).toBeUndefined();
    expect((await queue.drain())[0]?.payload).toMatchObject({
      resourceId: "__proto__",
      attributes: { k: "__proto__" },
    });
  });

  it("answers a unary message over maxMessageBytes with omnirelay.request.too_large; far over, grpc-js refuses it", async () => {
    const limit = 64 * 1024;
    const { queue, call } = await stack(cleanup, limit);
    const over = await call("Enqueue", enqueue("big", [], new Uint8Array(limit)));
    expect(over.error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(code(over)).toBe(ErrorCodes.rpc.requestTooLarge);
    expect(meta(over, "limit")).toBe(String(limit));
    // Twice the limit and more never reaches the inbound: bounded by grpc-js.
    const far = await call("Enqueue", enqueue("far", [], new Uint8Array(2 * limit + 1)));
    expect(far.error?.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect((await call("Enqueue", enqueue("fits", [], new Uint8Array(limit - 100)))).error).toBeUndefined();
    expect(queue.stats().pendingCount).toBe(1);
  });

  it("ends a session whose frame is over maxMessageBytes with an error frame and omnirelay.session.frame_too_large", async () => {
    const limit = 64 * 1024;
    const { queue, client, call } = await stack(cleanup, limit);
    const s = rawSession(client);
    s.write(new BinaryWriter().uint32(8).int64(5).finish()); // credit 5, nothing pending
    s.write(failFrame(utf8("r".repeat(96 * 1024))));
    const ended = await s.status;
    expect(ended.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(ended.metadata.get("omnirelay-error-code")).toEqual([ErrorCodes.rpc.sessionFrameTooLarge]);
    expect(ended.metadata.get("omnirelay-meta-limit")).toEqual([String(limit)]);
    expect(s.frames.at(-1)?.error?.code).toBe(ErrorCodes.rpc.sessionFrameTooLarge);
    // The session's credit died with it: an item enqueued now stays pending.
    expect((await call("Enqueue", enqueue("after"))).error).toBeUndefined();
    expect(queue.stats()).toMatchObject({ pendingCount: 1, activeLeaseCount: 0 });
  });
});
