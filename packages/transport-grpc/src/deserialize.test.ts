import { type BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeStrict, MalformedRequest, OversizedRequest, tolerantDeserializers } from "./deserialize.js";
import {
  EnqueueRequest,
  ItemPayload,
  ResourceLeaseServiceService,
} from "./gen/omnirelay/resourcelease/v1/resourcelease.js";

// The strict request decoder: exactly the generated decoders' answer for every well-formed message, a refusal for
// string bytes that are not UTF-8, and a map key `__proto__` kept as data. Fixed seed; FUZZ_RUNS runs more.

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const options = { numRuns: RUNS, seed: SEED };

/** An EnqueueRequest whose resource id is the raw `bytes` (any bytes: the wire does not promise UTF-8). */
function enqueueWithIdBytes(bytes: Uint8Array): Uint8Array {
  const w = new BinaryWriter().uint32(10).fork();
  w.uint32(10).string("t").uint32(18).bytes(bytes).uint32(26).string("p").uint32(34).string("json");
  return w.join().finish();
}

const decodeEnqueue = (bytes: Uint8Array) => decodeStrict(bytes, (r: BinaryReader) => EnqueueRequest.decode(r));

/** Well-formed text: any code points, surrogate pairs included, never a lone surrogate. */
const text = fc.string({ unit: "grapheme", maxLength: 40 });
const key = fc.oneof(text, fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty"));

describe("decodeStrict", () => {
  it("decodes every well-formed message exactly as the generated decoder does", () => {
    fc.assert(
      fc.property(
        text,
        fc.array(
          fc.tuple(
            text.filter((k) => k !== "__proto__"),
            text,
          ),
          { maxLength: 6 },
        ),
        (id, kv) => {
          const payload = ItemPayload.fromPartial({
            resourceType: id,
            resourceId: id,
            partitionKey: "p",
            payloadEncoding: "j",
          });
          for (const [k, v] of kv) payload.attributes[k] = v;
          const bytes = EnqueueRequest.encode({ payload }).finish();
          expect(decodeEnqueue(bytes)).toEqual(EnqueueRequest.decode(bytes));
          expect(decodeEnqueue(bytes).payload?.resourceId).toBe(id);
        },
      ),
      options,
    );
  });

  it("refuses string bytes that are not UTF-8, and otherwise reads back exactly the bytes sent", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 48 }),
      fc.constantFrom(
        Uint8Array.of(0x61, 0xff, 0x62),
        Uint8Array.of(0xed, 0xa0, 0x80),
        Uint8Array.of(0xef, 0xbb, 0xbf),
      ),
    );
    fc.assert(
      fc.property(bytes, (id) => {
        let decoded: string | undefined;
        try {
          decoded = decodeEnqueue(enqueueWithIdBytes(id)).payload?.resourceId;
        } catch {
          // refused: then the bytes really are not UTF-8
          expect(() => new TextDecoder("utf-8", { fatal: true }).decode(id)).toThrow();
          return;
        }
        expect(Buffer.from(decoded ?? "", "utf8").equals(Buffer.from(id))).toBe(true);
      }),
      options,
    );
  });

  it("keeps every map key, __proto__ included, as an own property; __proto__ as a value stays text", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(key, fc.oneof(text, fc.constant("__proto__"))), { selector: ([k]) => k }),
        (kv) => {
          // Written by hand: the generated encoder builds its maps with `{}` too.
          const w = new BinaryWriter().uint32(10).fork();
          w.uint32(10).string("t").uint32(18).string("__proto__").uint32(26).string("p").uint32(34).string("j");
          for (const [k, v] of kv) w.uint32(50).fork().uint32(10).string(k).uint32(18).string(v).join();
          const decoded = decodeEnqueue(w.join().finish()).payload!;
          expect(decoded.resourceId).toBe("__proto__");
          expect(Object.entries(decoded.attributes).sort()).toEqual(kv.map(([k, v]) => [k, v]).sort());
          expect(Object.getPrototypeOf(decoded.attributes)).toBe(Object.prototype);
        },
      ),
      options,
    );
  });
});

describe("tolerantDeserializers", () => {
  const service = tolerantDeserializers(ResourceLeaseServiceService, { maxMessageBytes: 64 });

  it("turns undecodable bytes into a MalformedRequest and oversized ones into an OversizedRequest, never a throw", () => {
    expect(service.enqueue.requestDeserialize(Buffer.from(enqueueWithIdBytes(Uint8Array.of(0xff))))).toBeInstanceOf(
      MalformedRequest,
    );
    expect(service.enqueue.requestDeserialize(Buffer.from([0x0a, 0xff, 0xff, 0xff]))).toBeInstanceOf(MalformedRequest);
    const over = service.session.requestDeserialize(Buffer.alloc(65));
    expect(over).toBeInstanceOf(OversizedRequest);
    expect((over as unknown as OversizedRequest).error("Session").metadata).toEqual({ field: "message", limit: "64" });
    expect(service.session.requestDeserialize(Buffer.alloc(64))).not.toBeInstanceOf(OversizedRequest);
  });
});
