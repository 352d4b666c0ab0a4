import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { checkDeterministicRecord, checkStateStoreKey, type DeterministicRecord } from "@omnirelay/core/deterministic";

/** In a `u` regex a surrogate pair is one code point, so only a lone surrogate is in category Cs. */
const loneSurrogate = /\p{Cs}/u;

/** Why PostgreSQL text cannot hold `value` exactly, or `undefined` when it can. */
function notStorable(value: string): "nul" | "lone_surrogate" | undefined {
  if (value.includes("\u0000")) return "nul";
  if (loneSurrogate.test(value)) return "lone_surrogate";
  return undefined;
}

/**
 * Checks a key as the contract asks (non-blank) and as a PostgreSQL `text` column can keep it exactly: no NUL
 * character (text has none) and no lone surrogate (it would become U+FFFD in UTF-8 and collide with another key).
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.key_invalid`.
 */
export function checkKey(value: unknown): string {
  const key = checkStateStoreKey(value);
  const reason = notStorable(key);
  if (reason !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyInvalid,
      message: `A state-store key must be text PostgreSQL can keep exactly (it holds ${reason === "nul" ? "a NUL character" : "a lone surrogate"}).`,
      metadata: { field: "key", reason },
    });
  }
  return key;
}

/** @throws OmniRelayError invalid-argument `resourcelease.deterministic.record_invalid` naming the bad field. */
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
  return record;
}
