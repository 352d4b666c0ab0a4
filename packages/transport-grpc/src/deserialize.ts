import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** A request message the inbound refuses without decoding it; `error` is what the call is answered with. */
export abstract class UndecodedRequest {
  /** The error for a message of `rpc` (the rpc's name, e.g. `Enqueue`). */
  abstract error(rpc: string): OmniRelayError;
}

/** A request whose bytes did not decode: answered INVALID_ARGUMENT instead of grpc-js's INTERNAL. */
export class MalformedRequest extends UndecodedRequest {
  constructor(private readonly cause: unknown) {
    super();
  }

  error(rpc: string): OmniRelayError {
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestMalformedProtobuf,
      message: `The ${rpc} request is not a valid message: ${(this.cause as Error)?.message ?? String(this.cause)}`,
      metadata: { rpc },
      cause: this.cause,
    });
  }
}

/**
 * A request message larger than the inbound's `maxMessageBytes` (and within grpc-js's receive limit, which is higher:
 * see {@link grpcReceiveLimit}), refused undecoded. A unary call is answered INVALID_ARGUMENT
 * `omnirelay.request.too_large`, as HTTP answers an oversized body; a session frame ends the session
 * `omnirelay.session.frame_too_large`.
 */
export class OversizedRequest extends UndecodedRequest {
  constructor(readonly limit: number) {
    super();
  }

  error(rpc: string): OmniRelayError {
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestTooLarge,
      message: `The ${rpc} request message exceeds ${this.limit} bytes.`,
      metadata: { field: "message", limit: String(this.limit) },
    });
  }
}

const MIB = 1024 * 1024;

/**
 * grpc-js's receive limit for an inbound whose messages may be `maxMessageBytes` long: up to twice that (at most
 * 16 MiB more), so a message somewhat over the limit still reaches the inbound and is refused with an OmniRelay code,
 * while a larger one is refused by grpc-js itself (RESOURCE_EXHAUSTED, no `omnirelay-*` trailers) before it is held in
 * memory whole.
 */
export function grpcReceiveLimit(maxMessageBytes: number): number {
  return maxMessageBytes + Math.min(maxMessageBytes, 16 * MIB);
}

// Strict UTF-8: a string field whose bytes are not UTF-8 (a stray 0xff, an encoded surrogate) makes the message
// malformed, as invalid UTF-8 makes an HTTP body malformed JSON, instead of arriving as U+FFFD in a value the caller
// never sent. One decoder for every message: `decode` runs to completion and keeps no state between calls.
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const decodeUtf8 = (bytes: Uint8Array): string => fatalDecoder.decode(bytes);

/**
 * What a string field `__proto__` is read as, until the decoded message is complete: generated decoders store map
 * entries with `map[key] = value` on a plain object, where the key `__proto__` would vanish (the assignment sets the
 * prototype, and a string prototype is ignored), so core's checks, which refuse that key as HTTP does, would never see
 * it. A lone surrogate, which strict UTF-8 decoding never yields, so no sent string can be mistaken for it.
 */
const PROTO_STAND_IN = "\uD800__proto__";

/** A reader that decodes strings strictly and notes a `__proto__` (read as {@link PROTO_STAND_IN}). */
class StrictReader extends BinaryReader {
  sawProto = false;

  constructor(bytes: Uint8Array) {
    super(bytes, decodeUtf8);
  }

  override string(): string {
    const value = super.string();
    if (value !== "__proto__") return value;
    this.sawProto = true;
    return PROTO_STAND_IN;
  }
}

/**
 * Decodes `bytes` with a generated `decode` (or a service's `requestDeserialize`, which passes its argument on to
 * one), reading strings strictly: invalid UTF-8 throws, and a map key `__proto__` is kept as an own property.
 * @throws Error when the bytes are not a valid message (as the generated decoder throws, or for invalid UTF-8).
 */
export function decodeStrict<T>(bytes: Uint8Array, decode: (reader: BinaryReader) => T): T {
  const reader = new StrictReader(bytes);
  const message = decode(reader);
  return reader.sawProto ? (restoreProto(message) as T) : message;
}

/** Puts `__proto__` back where {@link PROTO_STAND_IN} stands, as a value or as an own (data) property. */
function restoreProto(value: unknown): unknown {
  if (value === PROTO_STAND_IN) return "__proto__";
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreProto(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const restored = restoreProto(record[key]);
    if (key !== PROTO_STAND_IN) {
      record[key] = restored;
      continue;
    }
    delete record[key];
    Object.defineProperty(record, "__proto__", {
      value: restored,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return value;
}

type RequestDecoders = Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>;

/**
 * The service definition with request decoders that never throw: grpc-js answers a throwing decoder with INTERNAL
 * (a server bug, by the status table), but undecodable bytes are the caller's mistake. A message that does not decode
 * (see {@link decodeStrict}) becomes a {@link MalformedRequest}, one over `maxMessageBytes` an {@link OversizedRequest}.
 */
export function tolerantDeserializers<T extends RequestDecoders>(service: T, limits: { maxMessageBytes: number }): T {
  const { maxMessageBytes } = limits;
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    // ts-proto's requestDeserialize is `(value) => Message.decode(value)`, and decode takes a reader as well as bytes.
    const decode = (reader: BinaryReader) => method.requestDeserialize(reader as unknown as Buffer);
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        if (bytes.byteLength > maxMessageBytes) return new OversizedRequest(maxMessageBytes);
        try {
          return decodeStrict(bytes, decode);
        } catch (error) {
          return new MalformedRequest(error);
        }
      },
    };
  }
  return out as T;
}
