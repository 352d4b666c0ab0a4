import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { checkDeterministicRecord, checkStateStoreKey, type DeterministicRecord } from "@omnirelay/core/deterministic";

/** First byte of every stored value: the layout below, version 1. */
const FORMAT = 1;
/** Format byte + the header's length (uint32, big-endian). */
const PREFIX_BYTES = 5;

/** In a `u` regex a surrogate pair is one code point, so only a lone surrogate is in category Cs. */
const loneSurrogate = /\p{Cs}/u;

interface Header {
  readonly kind: string;
  readonly version: number;
  readonly recordedAt: number;
  /** Who wrote the value: a fresh id per write, so a writer can tell its own value from an equal one. */
  readonly writer: string;
}

/**
 * Checks a key as the contract asks (non-blank) and as Redis can keep it exactly: keys travel as UTF-8, where a lone
 * surrogate would become U+FFFD and two keys would collide.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.key_invalid`.
 */
export function checkKey(value: unknown): string {
  const key = checkStateStoreKey(value);
  if (loneSurrogate.test(key)) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyInvalid,
      message: "A state-store key must be well-formed Unicode text (it holds a lone surrogate).",
      metadata: { field: "key", reason: "lone_surrogate" },
    });
  }
  return key;
}

/** @throws OmniRelayError invalid-argument `resourcelease.deterministic.record_invalid` naming the bad field. */
export function checkRecord(record: DeterministicRecord): DeterministicRecord {
  checkDeterministicRecord(record);
  return record;
}

/**
 * One record as one Redis string, so a single `SET … NX` stores it whole: a format byte (1), the length of a JSON
 * header `{kind, version, recordedAt, writer}` as a big-endian uint32, the header (UTF-8), then the payload's bytes as
 * they are. JSON keeps every safe-integer version and every finite time exactly, and escapes any kind losslessly.
 */
export function encodeRecord(record: DeterministicRecord, writer: string): Buffer {
  const header: Header = { kind: record.kind, version: record.version, recordedAt: record.recordedAt, writer };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = Buffer.allocUnsafe(PREFIX_BYTES + json.length + record.payload.length);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt32BE(json.length, 1);
  json.copy(out, PREFIX_BYTES);
  out.set(record.payload, PREFIX_BYTES + json.length);
  return out;
}

/**
 * Reads a value written by {@link encodeRecord}; `undefined` when it is not one (another program's value, damage).
 * The payload is a copy: the caller may change it.
 */
export function decodeRecord(value: Buffer): (DeterministicRecord & { readonly writer: string }) | undefined {
  if (value.length < PREFIX_BYTES || value.readUInt8(0) !== FORMAT) return undefined;
  const headerLength = value.readUInt32BE(1);
  if (PREFIX_BYTES + headerLength > value.length) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(value.toString("utf8", PREFIX_BYTES, PREFIX_BYTES + headerLength));
  } catch {
    return undefined;
  }
  if (typeof header !== "object" || header === null) return undefined;
  const { kind, version, recordedAt, writer } = header as Partial<Header>;
  if (typeof kind !== "string" || kind.trim().length === 0) return undefined;
  if (typeof version !== "number" || !Number.isSafeInteger(version)) return undefined;
  if (typeof recordedAt !== "number" || !Number.isFinite(recordedAt)) return undefined;
  if (typeof writer !== "string") return undefined;
  const payload = new Uint8Array(value.subarray(PREFIX_BYTES + headerLength));
  return { kind, version, payload, recordedAt, writer };
}
