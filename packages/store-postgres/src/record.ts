import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { checkDeterministicRecord, checkStateStoreKey, type DeterministicRecord } from "@omnirelay/core/deterministic";

/**
 * Longest key, in UTF-8 bytes. The key is the primary key: a btree index entry holds at most about 2,700 bytes, and a
 * longer key would fail in the server (SQLSTATE 54000) on every attempt; 2,000 bytes always fit.
 */
export const MAX_KEY_BYTES = 2000;

/**
 * Largest payload, in bytes (16 MiB), as in the Redis store. node-postgres reads `bytea` as hex text, twice the size,
 * and a JavaScript string ends at about 512 Mi characters: a payload of 256 MiB could be written but never read. A
 * record this large also reads well within the default `queryTimeoutMs`.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** In a `u` regex a surrogate pair is one code point, so only a lone surrogate is in category Cs. */
const loneSurrogate = /\p{Cs}/u;

/** Why PostgreSQL text cannot hold `value` exactly, or `undefined` when it can. */
function notStorable(value: string): "nul" | "lone_surrogate" | undefined {
  if (value.includes("\u0000")) return "nul";
  if (loneSurrogate.test(value)) return "lone_surrogate";
  return undefined;
}

const KEY_REASONS = {
  nul: "it holds a NUL character",
  lone_surrogate: "it holds a lone surrogate",
  too_long: `it is longer than ${MAX_KEY_BYTES} bytes of UTF-8`,
} as const;

/**
 * Checks a key as the contract asks (non-blank) and as a PostgreSQL `text` primary key can keep it exactly: no NUL
 * character (text has none), no lone surrogate (it would become U+FFFD in UTF-8 and collide with another key), and at
 * most {@link MAX_KEY_BYTES} bytes of UTF-8 (the primary-key index refuses longer ones).
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.key_invalid` (metadata
 *   `reason`: `nul`, `lone_surrogate` or `too_long`).
 */
export function checkKey(value: unknown): string {
  const key = checkStateStoreKey(value);
  const reason =
    notStorable(key) ?? (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES ? ("too_long" as const) : undefined);
  if (reason !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyInvalid,
      message: `A state-store key must be text PostgreSQL can keep exactly (${KEY_REASONS[reason]}).`,
      metadata: { field: "key", reason, maxBytes: String(MAX_KEY_BYTES) },
    });
  }
  return key;
}

/**
 * Checks a record as the contract asks, with a kind text can keep and a payload of at most {@link MAX_PAYLOAD_BYTES}.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.record_invalid` naming the bad field.
 */
export function checkRecord(record: DeterministicRecord): DeterministicRecord {
  checkDeterministicRecord(record);
  if (notStorable(record.kind) !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.recordInvalid,
      message: "Record kind is invalid.",
      metadata: { field: "kind" },
    });
  }
  if (record.payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.recordInvalid,
      message: `Record payload is ${record.payload.byteLength} bytes; the PostgreSQL store keeps at most ${MAX_PAYLOAD_BYTES}.`,
      metadata: { field: "payload", maxBytes: String(MAX_PAYLOAD_BYTES) },
    });
  }
  return record;
}

/** A row as `get` selects it: the payload only when it is at most {@link MAX_PAYLOAD_BYTES} (else null). */
export interface Row {
  readonly kind: unknown;
  readonly version: unknown;
  readonly recorded_at: unknown;
  readonly payload: unknown;
  readonly payload_bytes: unknown;
}

/** A `bigint` arrives as its decimal text; a safe integer has at most 16 digits. */
const BIGINT_TEXT = /^-?(0|[1-9][0-9]{0,15})$/;

function versionOf(value: unknown): number | undefined {
  const version = typeof value === "string" && BIGINT_TEXT.test(value) ? Number(value) : value;
  return typeof version === "number" && Number.isSafeInteger(version) ? version : undefined;
}

/** The first field of `row` that breaks the record contract, or `undefined` when the row is a record. */
function badField(row: Row): string | undefined {
  if (typeof row.kind !== "string" || row.kind.trim().length === 0) return "kind";
  if (versionOf(row.version) === undefined) return "version";
  if (typeof row.recorded_at !== "number" || !Number.isFinite(row.recorded_at)) return "recordedAt";
  if (Number(row.payload_bytes) > MAX_PAYLOAD_BYTES) return "payload_size";
  if (!Buffer.isBuffer(row.payload)) return "payload";
  return undefined;
}

/**
 * Reads a row back as a record, checking it as `set` checks a record: a row changed by something else (a version
 * past 2^53, a NaN time, a blank kind, a payload column that is not `bytea`, a payload larger than the store writes)
 * is refused rather than returned as another record.
 * @throws OmniRelayError data-loss `resourcelease.deterministic.store_corrupt`, metadata `store`, `key`, `field`.
 */
export function rowToRecord(row: Row, at: { readonly key: string; readonly table: string }): DeterministicRecord {
  const field = badField(row);
  if (field !== undefined) {
    throw new OmniRelayError({
      status: "data-loss",
      code: ErrorCodes.deterministic.storeCorrupt,
      message: `The row at '${at.key}' in ${at.table} is not a deterministic record (bad ${field}).`,
      metadata: { store: "postgres", key: at.key, field },
    });
  }
  return {
    kind: row.kind as string,
    version: versionOf(row.version) as number,
    payload: new Uint8Array(row.payload as Buffer),
    recordedAt: row.recorded_at as number,
  };
}
