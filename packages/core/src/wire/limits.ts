import type { ResourceLeaseItemPayload } from "./messages.js";

/**
 * Hard limits on what a caller may put into a queue. Each one keeps an accepted value storable: the event log must
 * be able to encode, decode and replay anything the API accepts, and no single request may take memory out of
 * proportion to what it carries. String lengths are counted in UTF-16 code units (JavaScript's `length`).
 */
export const ResourceLeaseLimits = {
  /** Longest `resourceType`. */
  resourceTypeLength: 256,
  /** Longest `resourceId`. */
  resourceIdLength: 1024,
  /** Longest `partitionKey`. */
  partitionKeyLength: 256,
  /** Longest `payloadEncoding`. */
  payloadEncodingLength: 128,
  /** Longest `requestId`. */
  requestIdLength: 256,
  /** Most entries in `attributes` (and in a fail's `metadata`). */
  attributeCount: 64,
  /** Longest attribute (or fail metadata) key. */
  attributeKeyLength: 128,
  /** Longest attribute (or fail metadata) value. */
  attributeValueLength: 4096,
  /** Longest `peerId`. */
  peerIdLength: 256,
  /** Longest error message (`fail` reason, `lastError.message`). */
  errorMessageLength: 4096,
  /** Longest error code (`fail` errorCode, `lastError.code`). */
  errorCodeLength: 256,
  /** Longest `leaseId` in a token. */
  leaseIdLength: 128,
  /**
   * Highest item sequence id a restore may bring in. Ids above it are reserved, so the queue's own counter (which
   * continues after the highest id it has seen) can never leave JavaScript's safe-integer range; the queue's own
   * drained items, whose ids that counter gave, come back with theirs.
   */
  maxSequenceId: 2 ** 52,
  /** Highest `attempt` a restored item or a token may carry. */
  maxAttempt: 2 ** 31 - 1,
  /** Lowest item `priority` (the int32 range, what every log and the proto carry). */
  minPriority: -(2 ** 31),
  /** Highest item `priority`. */
  maxPriority: 2 ** 31 - 1,
  /**
   * Longest enqueue `delayMs`: 36,525 days, which holds any 100 calendar years, leap days included (the due time must
   * stay within `maxTimeMs`).
   */
  maxDelayMs: 36_525 * 86_400_000,
  /** Latest time an item may carry: 9999-12-31T23:59:59.999Z (the last instant ISO-8601's four-digit year can write). */
  maxTimeMs: 253_402_300_799_999,
} as const;

/**
 * What an item's payload counts against a queue's byte budget: its body's bytes plus the UTF-16 code units of its
 * strings (every string field, attribute keys and values). An estimate of what the queue holds for it, cheap to
 * compute, the same on every node that replays the same events, and it follows a new field without a change here.
 */
export function payloadBytes(payload: ResourceLeaseItemPayload): number {
  let n = 0;
  const fields = payload as unknown as Record<string, unknown>;
  for (const key in fields) {
    const value = fields[key];
    if (typeof value === "string") n += value.length;
    else if (value instanceof Uint8Array) n += value.byteLength;
    else if (typeof value === "object" && value !== null) {
      const map = value as Record<string, string>;
      for (const k in map) n += k.length + map[k]!.length;
    }
  }
  return n;
}
