import { crc32 } from "node:zlib";
import type { DeterministicRecord } from "../contracts/stores.js";

/** First byte of every encoded record: the layout below, version 1. */
const FORMAT = 1;
/** Format byte + the header's length (uint32, big-endian). */
const PREFIX_BYTES = 5;

interface Header {
  readonly kind: string;
  readonly version: number;
  readonly recordedAt: number;
  readonly writer: string;
  /** The payload's length and CRC-32: absent in records written before they were added, checked when present. */
  readonly payloadBytes?: number;
  readonly payloadCrc32?: number;
}

/** A record read back by {@link decodeDeterministicRecord}, with the id of the write that stored it. */
export interface DecodedDeterministicRecord extends DeterministicRecord {
  /** The `writer` given to {@link encodeDeterministicRecord}. */
  readonly writer: string;
}

/**
 * One record as one value, for a store whose insert-if-absent works on a single value (Redis `SET … NX`, a NATS KV
 * `create`): a format byte (1), the length of a JSON header `{kind, version, recordedAt, writer}` as a big-endian
 * uint32, the header (UTF-8), then the payload's bytes as they are. The header also holds the payload's length and
 * CRC-32 (`payloadBytes`, `payloadCrc32`), so a value cut, extended or damaged in the payload reads as damage, not as a
 * different payload; a reader of an earlier release ignores them. JSON keeps every safe-integer version and every
 * finite time exactly, and escapes any kind losslessly. `writer` is a fresh id per write, so a store whose client may
 * resend an insert after a reconnect can tell its own stored value from another writer's equal one. Check the record
 * first (`checkDeterministicRecord`).
 */
export function encodeDeterministicRecord(record: DeterministicRecord, writer: string): Uint8Array {
  const header: Header = {
    kind: record.kind,
    version: record.version,
    recordedAt: record.recordedAt,
    writer,
    payloadBytes: record.payload.length,
    payloadCrc32: crc32(record.payload),
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = Buffer.allocUnsafe(PREFIX_BYTES + json.length + record.payload.length);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt32BE(json.length, 1);
  json.copy(out, PREFIX_BYTES);
  out.set(record.payload, PREFIX_BYTES + json.length);
  return out;
}

/**
 * Reads a value written by {@link encodeDeterministicRecord}; `undefined` when it is not one (another program's value,
 * damage). The payload is a copy: the caller may change it.
 */
export function decodeDeterministicRecord(bytes: Uint8Array): DecodedDeterministicRecord | undefined {
  const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
  const { kind, version, recordedAt, writer, payloadBytes, payloadCrc32 } = header as Partial<Header>;
  if (typeof kind !== "string" || kind.trim().length === 0) return undefined;
  if (typeof version !== "number" || !Number.isSafeInteger(version)) return undefined;
  if (typeof recordedAt !== "number" || !Number.isFinite(recordedAt)) return undefined;
  if (typeof writer !== "string") return undefined;
  const payload = new Uint8Array(value.subarray(PREFIX_BYTES + headerLength));
  if (payloadBytes !== undefined && payloadBytes !== payload.length) return undefined;
  if (payloadCrc32 !== undefined && payloadCrc32 !== crc32(payload)) return undefined;
  return { kind, version, payload, recordedAt, writer };
}
