import type { ContainerClient } from "@azure/storage-blob";
import type { CallOptions } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { integerOption } from "@omnirelay/core/wire";
import { cancelledError, existsError, storeError } from "../errors.js";
import { PageTokens } from "../listing.js";

/** Options of {@link AzureBlobResourceLeaseObjectStore}. */
export interface AzureBlobResourceLeaseObjectStoreOptions {
  /** The container, from a configured `BlobServiceClient`: `service.getContainerClient(name)`. */
  readonly container: ContainerClient;
  /** Blobs per list request (Azure caps it at 5000). @defaultValue 5000 */
  readonly pageSize?: number;
}

const statusOf = (error: unknown): number | undefined => {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === "number" ? status : undefined;
};

/**
 * A {@link ResourceLeaseObjectStore} on Azure Blob Storage (block blobs). Create-if-absent uses the condition
 * `If-None-Match: *` (409 BlobAlreadyExists or 412 → `already-exists`). Azure's flat listing has no "start after",
 * so `list` pages through the prefix and skips keys up to `startAfter`; the replicator's bucketed key layout keeps
 * those listings to at most two buckets.
 */
export class AzureBlobResourceLeaseObjectStore implements ResourceLeaseObjectStore {
  private readonly container: ContainerClient;
  private readonly pageSize: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: AzureBlobResourceLeaseObjectStoreOptions) {
    if (!options?.container || typeof options.container.getBlockBlobClient !== "function") {
      throw OmniRelayError.invalidOption("container", "container is required.");
    }
    const pageSize = integerOption("pageSize", options.pageSize, { min: 1, max: 5000, fallback: 5000 });
    this.container = options.container;
    this.pageSize = pageSize;
  }

  /**
   * Uploads the blob; with `ifNoneMatch: '*'` only when it does not exist.
   * @throws OmniRelayError already-exists `resourcelease.objectstorage.exists`; unavailable
   *   `resourcelease.objectstorage.store_failed`; cancelled `resourcelease.cancelled`.
   */
  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const { contentType } = options;
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      await this.container.getBlockBlobClient(key).upload(bytes, bytes.byteLength, {
        blobHTTPHeaders: { blobContentType: contentType },
        ...(options.ifNoneMatch === "*" ? { conditions: { ifNoneMatch: "*" } } : {}),
        ...(options.signal ? { abortSignal: options.signal } : {}),
      });
    } catch (error) {
      // The SDK reports an abort as a failed request; it is the caller's cancellation, not a store outage.
      if (options.signal?.aborted) throw cancelledError(options.signal);
      const status = statusOf(error);
      if (options.ifNoneMatch === "*" && (status === 409 || status === 412)) throw existsError(key, error);
      throw storeError("put", key, error);
    }
  }

  /**
   * Downloads the blob, `undefined` when it does not exist.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed`; cancelled `resourcelease.cancelled`.
   */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      const buffer = await this.container
        .getBlobClient(key)
        .downloadToBuffer(0, undefined, options.signal ? { abortSignal: options.signal } : {});
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      if (statusOf(error) === 404) return undefined;
      throw storeError("get", key, error);
    }
  }

  /**
   * Lists blobs with `prefix` in key order, strictly after `startAfter`.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` (also for a continuation token
   *   returned twice, which would request the same pages forever); cancelled `resourcelease.cancelled`.
   */
  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    const pages = this.container
      .listBlobsFlat({ prefix, ...(options.signal ? { abortSignal: options.signal } : {}) })
      .byPage({ maxPageSize: this.pageSize });
    const tokens = new PageTokens(prefix);
    try {
      for await (const page of pages) {
        if (options.signal?.aborted) throw cancelledError(options.signal);
        tokens.next(page.continuationToken || undefined);
        for (const blob of page.segment.blobItems) {
          if (startAfter !== undefined && blob.name <= startAfter) continue;
          const size = blob.properties.contentLength;
          yield size === undefined ? { key: blob.name } : { key: blob.name, size };
        }
      }
    } catch (error) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      throw storeError("list", prefix, error);
    }
  }
}
