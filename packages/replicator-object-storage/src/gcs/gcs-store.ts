import type { Bucket, File, GetFilesOptions } from "@google-cloud/storage";
import type { CallOptions } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { integerOption } from "@omnirelay/core/wire";
import { cancelledError, existsError, storeError } from "../errors.js";
import { PageTokens } from "../listing.js";

/** Options of {@link GcsResourceLeaseObjectStore}. */
export interface GcsResourceLeaseObjectStoreOptions {
  /** The bucket, from a configured `Storage` client: `new Storage(...).bucket(name)`. */
  readonly bucket: Bucket;
  /** Keys per list request. @defaultValue 1000 */
  readonly pageSize?: number;
}

const codeOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
};

/**
 * A {@link ResourceLeaseObjectStore} on Google Cloud Storage. Create-if-absent uses the precondition
 * `ifGenerationMatch: 0` (412 when the object exists → `already-exists`); listing uses `startOffset`, so a resume lists
 * only new keys. Uploads are single-request (not resumable): segments are small.
 */
export class GcsResourceLeaseObjectStore implements ResourceLeaseObjectStore {
  private readonly bucket: Bucket;
  private readonly pageSize: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: GcsResourceLeaseObjectStoreOptions) {
    if (!options?.bucket || typeof options.bucket.file !== "function")
      throw OmniRelayError.invalidOption("bucket", "bucket is required.");
    const pageSize = integerOption("pageSize", options.pageSize, { min: 1, fallback: 1000 });
    this.bucket = options.bucket;
    this.pageSize = pageSize;
  }

  /**
   * Uploads the object; with `ifNoneMatch: '*'` only when it does not exist.
   * @throws OmniRelayError already-exists `resourcelease.objectstorage.exists`; unavailable
   *   `resourcelease.objectstorage.store_failed`; cancelled `resourcelease.cancelled`.
   */
  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const { contentType } = options;
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      await this.bucket.file(key).save(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
        contentType,
        resumable: false,
        ...(options.ifNoneMatch === "*" ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
      });
    } catch (error) {
      if (options.ifNoneMatch === "*" && codeOf(error) === 412) throw existsError(key, error);
      throw storeError("put", key, error);
    }
  }

  /**
   * Downloads the object, `undefined` when it does not exist.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed`.
   */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      const [content] = await this.bucket.file(key).download();
      return new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
    } catch (error) {
      if (codeOf(error) === 404) return undefined;
      throw storeError("get", key, error);
    }
  }

  /**
   * Lists keys with `prefix` in key order, strictly after `startAfter` (`startOffset` is inclusive, so the equal key
   * is dropped).
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` (also for a page token returned
   *   twice, which would request the same pages forever).
   */
  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    let query: GetFilesOptions | undefined = {
      prefix,
      autoPaginate: false,
      maxResults: this.pageSize,
      ...(startAfter !== undefined ? { startOffset: startAfter } : {}),
    };
    const tokens = new PageTokens(prefix);
    while (query) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      let files: File[];
      let next: unknown;
      try {
        [files, next] = (await this.bucket.getFiles(query)) as unknown as [File[], unknown];
      } catch (error) {
        throw storeError("list", prefix, error);
      }
      for (const file of files) {
        if (startAfter !== undefined && file.name <= startAfter) continue;
        const size = Number(file.metadata?.size);
        yield Number.isFinite(size) ? { key: file.name, size } : { key: file.name };
      }
      query = next && typeof next === "object" && "pageToken" in next ? (next as GetFilesOptions) : undefined;
      if (query) tokens.next(String(query.pageToken));
    }
  }
}
