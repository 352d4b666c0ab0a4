import type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
import { checkDeterministicRecord, checkStateStoreKey } from "./checks.js";

function copyRecord(record: DeterministicRecord): DeterministicRecord {
  const r = checkDeterministicRecord(record);
  return { kind: r.kind, version: r.version, payload: r.payload.slice(), recordedAt: r.recordedAt };
}

/**
 * A {@link DeterministicStateStore} in memory. Keys match exactly (case-sensitive). Records are copied in and out,
 * so callers cannot change stored bytes. `tryAdd` is atomic because the check and insert run in one synchronous step.
 */
export class InMemoryDeterministicStateStore implements DeterministicStateStore {
  private readonly records = new Map<string, DeterministicRecord>();

  /** Returns a copy of the record at `key`, or `undefined`. @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required`. */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const record = this.records.get(checkStateStoreKey(key));
    return record === undefined ? undefined : copyRecord(record);
  }

  /**
   * Inserts or replaces the record at `key`.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    this.records.set(checkStateStoreKey(key), copyRecord(record));
  }

  /**
   * Inserts the record when `key` is absent; returns `false` and changes nothing when it is present.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    const checked = checkStateStoreKey(key);
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
