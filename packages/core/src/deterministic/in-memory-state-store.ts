import type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key.trim().length === 0) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.keyRequired,
      message: "A state-store key is required.",
      metadata: {
        field: "key",
      },
    });
  }
  return key;
}

function copyRecord(record: DeterministicRecord): DeterministicRecord {
  const bad = (field: string): never => {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.recordInvalid,
      message: `Record ${field} is invalid.`,
      metadata: {
        field,
      },
    });
  };
  if (typeof record !== "object" || record === null) bad("record");
  if (typeof record.kind !== "string" || record.kind.trim().length === 0) bad("kind");
  if (!Number.isSafeInteger(record.version)) bad("version");
  if (!(record.payload instanceof Uint8Array)) bad("payload");
  if (typeof record.recordedAt !== "number" || !Number.isFinite(record.recordedAt)) bad("recordedAt");
  return { kind: record.kind, version: record.version, payload: record.payload.slice(), recordedAt: record.recordedAt };
}

/**
 * A {@link DeterministicStateStore} in memory. Keys match exactly (case-sensitive). Records are copied in and out,
 * so callers cannot change stored bytes. `tryAdd` is atomic because the check and insert run in one synchronous step.
 */
export class InMemoryDeterministicStateStore implements DeterministicStateStore {
  private readonly records = new Map<string, DeterministicRecord>();

  /** Returns a copy of the record at `key`, or `undefined`. @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required`. */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const record = this.records.get(checkKey(key));
    return record === undefined ? undefined : copyRecord(record);
  }

  /**
   * Inserts or replaces the record at `key`.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    this.records.set(checkKey(key), copyRecord(record));
  }

  /**
   * Inserts the record when `key` is absent; returns `false` and changes nothing when it is present.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    const checked = checkKey(key);
    const copy = copyRecord(record);
    if (this.records.has(checked)) return false;
    this.records.set(checked, copy);
    return true;
  }

  /** Number of stored records. */
  get size(): number {
    return this.records.size;
  }

  /** The stored keys, in insertion order. */
  keys(): string[] {
    return [...this.records.keys()];
  }
}
