import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Client, credentials, status as GrpcStatus, Metadata } from "@grpc/grpc-js";
import { Dispatcher, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResourceLeaseServiceService } from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound } from "../src/index.js";

// Property-based fuzzing of every gRPC request decoder (hardening issue): random protobuf — valid field numbers with
// wrong wire types, int64 extremes, nested junk, truncated bytes — sent to every rpc. Whatever arrives is answered
// with a result or a caller's-fault status; never INTERNAL or UNKNOWN (a server bug by the status table), and the
// server keeps serving. CI runs a fixed seed and a bounded number of runs; FUZZ_RUNS / FUZZ_SEED run more.

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

type Field =
  | { no: number; kind: "varint"; value: bigint }
  | { no: number; kind: "bytes"; value: Uint8Array }
  | { no: number; kind: "string"; value: string }
  | { no: number; kind: "fixed64"; value: bigint }
  | { no: number; kind: "message"; value: Field[] };

const fieldNo = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 9 }) },
  fc.integer({ min: 10, max: 2 ** 29 - 1 }),
);
const int64 = fc.oneof(
  fc.bigInt({ min: -5n, max: 60n }),
  fc.constantFrom(2n ** 31n - 1n, 2n ** 52n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)),
);
const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom("", "table", "json", "p", "2026-01-01T00:00:00.000Z", "+275760-09-13T00:00:00.000Z", "Dec 25 1999"),
);
const { field } = fc.letrec<{ field: Field; fields: Field[] }>((tie) => ({
  field: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ no: fieldNo, kind: fc.constant("varint" as const), value: int64 }),
    fc.record({ no: fieldNo, kind: fc.constant("string" as const), value: text }),
    fc.record({ no: fieldNo, kind: fc.constant("bytes" as const), value: fc.uint8Array({ maxLength: 12 }) }),
    fc.record({
      no: fieldNo,
      kind: fc.constant("fixed64" as const),
      value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    }),
    fc.record({ no: fieldNo, kind: fc.constant("message" as const), value: tie("fields") as fc.Arbitrary<Field[]> }),
  ),
  fields: fc.array(tie("field") as fc.Arbitrary<Field>, { maxLength: 6 }),
}));

function write(w: BinaryWriter, fields: readonly Field[]): BinaryWriter {
  for (const f of fields) {
    switch (f.kind) {
      case "varint":
        w.tag(f.no, WireType.Varint).int64(f.value);
        break;
      case "string":
        w.tag(f.no, WireType.LengthDelimited).string(f.value);
        break;
      case "bytes":
        w.tag(f.no, WireType.LengthDelimited).bytes(f.value);
        break;
      case "fixed64":
        w.tag(f.no, WireType.Bit64).fixed64(f.value);
        break;
      case "message":
        w.tag(f.no, WireType.LengthDelimited).fork();
        write(w, f.value);
        w.join();
        break;
    }
  }
  return w;
}

const message = fc.tuple(fc.array(field, { maxLength: 8 }), fc.nat({ max: 3 })).map(([fields, cut]) => {
  const bytes = write(new BinaryWriter(), fields).finish();
  // Sometimes cut the message short, as a torn write would.
  return cut === 0 && bytes.length > 1 ? bytes.subarray(0, bytes.length - 1) : bytes;
});

const methods = Object.values(ResourceLeaseServiceService).map((m) => m.path);

describe("fuzz: every gRPC request decoder", () => {
  let client: Client;
  let inbound: GrpcInbound;
  let component: ResourceLeaseDispatcherComponent;
  beforeAll(async () => {
    const dispatcher = new Dispatcher({ service: "fuzz" });
    component = new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions: { capacity: 100_000, maxWaitMs: 0 } });
    inbound = new GrpcInbound({ dispatcher });
    const { port } = await inbound.start();
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await inbound.close({ graceMs: 0 });
    await component.close();
  });

  const call = (path: string, bytes: Uint8Array) =>
    new Promise<{ code: number; details: string }>((resolve) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error) => resolve({ code: error?.code ?? GrpcStatus.OK, details: error?.details ?? "" }),
      ),
    );

  it("answers any bytes on any rpc with a result or a caller's-fault status", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), message, async (path, bytes) => {
        const { code, details } = await call(path, bytes);
        expect(
          [GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN],
          `${path} ${Buffer.from(bytes).toString("hex")}: ${details}`,
        ).not.toContain(code);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(component.queue.stats().state).not.toBe("faulted");
  });
});
