import type { DeterministicRecord } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

// The argument checks every DeterministicStateStore makes, so each backend refuses the same inputs with the same codes.
// A backend adds its own limits after these (a text column without NUL, a key that must survive UTF-8).

/**
 * Checks a state-store key: a string that is not blank.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required`, metadata `field: key`.
 */
export function checkStateStoreKey(key: unknown): string {
  if (typeof key !== "string" || key.trim().length === 0) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyRequired,
      message: "A state-store key is required.",
      metadata: { field: "key" },
    });
  }
  return key;
}

/** In a `u` regex a surrogate pair is one code point, so only a lone surrogate is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * {@link checkStateStoreKey} for a store whose keys travel as UTF-8 (Redis, NATS KV): a key with a lone surrogate is
 * refused too, since UTF-8 would turn it into U+FFFD and two keys would collide.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required`, or `.key_invalid` with metadata
 *   `reason: lone_surrogate`.
 */
export function checkUtf8StateStoreKey(key: unknown): string {
  const checked = checkStateStoreKey(key);
  if (LONE_SURROGATE.test(checked)) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyInvalid,
      message: "A state-store key must be well-formed Unicode text (it holds a lone surrogate).",
      metadata: { field: "key", reason: "lone_surrogate" },
    });
  }
  return checked;
}

/**
 * Checks a record given to a state store: a non-blank `kind`, a safe-integer `version`, `payload` bytes and a finite
 * `recordedAt`.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.record_invalid`, metadata `field` (the first
 *   bad one: `record`, `kind`, `version`, `payload` or `recordedAt`).
 */
export function checkDeterministicRecord(record: DeterministicRecord): DeterministicRecord {
  const bad = (field: string): never => {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.recordInvalid,
      message: `Record ${field} is invalid.`,
      metadata: { field },
    });
  };
  if (typeof record !== "object" || record === null) bad("record");
  if (typeof record.kind !== "string" || record.kind.trim().length === 0) bad("kind");
  if (!Number.isSafeInteger(record.version)) bad("version");
  if (!(record.payload instanceof Uint8Array)) bad("payload");
  if (typeof record.recordedAt !== "number" || !Number.isFinite(record.recordedAt)) bad("recordedAt");
  return record;
}
