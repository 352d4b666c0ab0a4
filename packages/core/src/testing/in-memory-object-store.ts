import type { CallOptions } from "../contracts/events.js";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

interface StoredObject {
  readonly bytes: Uint8Array;
  readonly contentType: string;
}

/** UTF-8 byte order, the order S3 and GCS list keys in. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function cancelled(signal: AbortSignal): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The object-store call was cancelled.",
    cause: signal.reason,
  });
}

function checkKey(key: unknown, field: string): string {
  if (typeof key !== "string" || key.length === 0) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.argumentInvalid,
      message: `${field} must be a non-empty string.`,
      metadata: { field },
    });
  }
  return key;
}

/**
 * A `ResourceLeaseObjectStore` in memory: a test double for the object-storage replicator and anything else written
 * against the contract, and the reference the object-store conformance suite is checked with. It behaves as S3 does:
 * bytes are copied in and out, `ifNoneMatch: '*'` is atomic, `list` is in UTF-8 byte order, a key may be both an
 * object and the folder of others. Every call with an aborted signal fails with `cancelled`.
 */
export class InMemoryResourceLeaseObjectStore implements ResourceLeaseObjectStore {
  private readonly objects = new Map<string, StoredObject>();

  /**
   * Stores a copy of `bytes` under `key`; with `ifNoneMatch: '*'` only when the key is absent.
   * @throws OmniRelayError already-exists `resourcelease.objectstorage.exists` when `ifNoneMatch` finds the key;
   *   invalid-argument `resourcelease.argument.invalid` for an empty key; cancelled `resourcelease.cancelled`.
   */
  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const { contentType } = options;
    if (options.signal?.aborted) throw cancelled(options.signal);
    checkKey(key, "key");
    if (options.ifNoneMatch === "*" && this.objects.has(key)) {
      throw new OmniRelayError({
        status: "already-exists",
        // The code the object-storage replicator's own stores use (and read as "another writer owns the prefix"),
        // so the replicator runs on this store as on S3.
        code: ErrorCodes.objectStorage.exists,
        message: `Object ${key} already exists; it is never overwritten.`,
        metadata: { key },
      });
    }
    this.objects.set(key, { bytes: Uint8Array.from(bytes), contentType });
  }

  /**
   * A copy of the bytes at `key`, or `undefined`.
   * @throws OmniRelayError cancelled `resourcelease.cancelled`.
   */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    if (options.signal?.aborted) throw cancelled(options.signal);
    const found = this.objects.get(key);
    return found === undefined ? undefined : Uint8Array.from(found.bytes);
  }

  /**
   * Keys starting with `prefix`, in UTF-8 byte order, strictly after `startAfter`, with their sizes. The keys are
   * those present when the listing starts.
   * @throws OmniRelayError cancelled `resourcelease.cancelled` (checked before every entry).
   */
  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    const selected = [...this.objects.keys()]
      .filter((key) => key.startsWith(prefix) && (startAfter === undefined || byteOrder(key, startAfter) > 0))
      .sort(byteOrder);
    if (options.signal?.aborted) throw cancelled(options.signal);
    for (const key of selected) {
      if (options.signal?.aborted) throw cancelled(options.signal);
      const found = this.objects.get(key);
      if (found !== undefined) yield { key, size: found.bytes.byteLength };
    }
  }

  /** The content type stored with `key`, or `undefined` when it does not exist. */
  contentTypeOf(key: string): string | undefined {
    return this.objects.get(key)?.contentType;
  }

  /** Number of stored objects. */
  get size(): number {
    return this.objects.size;
  }

  /** Every stored key, in UTF-8 byte order. */
  keys(): string[] {
    return [...this.objects.keys()].sort(byteOrder);
  }
}
