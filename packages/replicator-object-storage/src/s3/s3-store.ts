import {
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { CallOptions } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { integerOption } from "@omnirelay/core/wire";
import { cancelledError, existsError, storeError } from "../errors.js";
import { PageTokens } from "../listing.js";

/** Options of {@link S3ResourceLeaseObjectStore}. */
export interface S3ResourceLeaseObjectStoreOptions {
  /** A configured client (region, credentials, endpoint). The store never closes it. */
  readonly client: S3Client;
  /** Bucket name. */
  readonly bucket: string;
  /** Keys per list request (S3 caps it at 1000). @defaultValue 1000 */
  readonly pageSize?: number;
}

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (error: unknown): number | undefined => (error as SdkError)?.$metadata?.httpStatusCode;

/**
 * A {@link ResourceLeaseObjectStore} on Amazon S3. Create-if-absent uses S3 conditional writes
 * (`If-None-Match: *`, answered with 412 PreconditionFailed, or 409 ConditionalRequestConflict during a concurrent
 * write); both become `already-exists`. Listing uses ListObjectsV2 with `StartAfter`, so a resume lists only new keys.
 * The store must support conditional writes (AWS S3 since August 2024; check your S3-compatible service).
 */
export class S3ResourceLeaseObjectStore implements ResourceLeaseObjectStore {
  /** The bucket name. */
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly pageSize: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: S3ResourceLeaseObjectStoreOptions) {
    if (!options?.client || typeof options.client.send !== "function")
      throw OmniRelayError.invalidOption("client", "client is required.");
    if (typeof options.bucket !== "string" || options.bucket.length === 0)
      throw OmniRelayError.invalidOption("bucket", "bucket is required.");
    const pageSize = integerOption("pageSize", options.pageSize, { min: 1, max: 1000, fallback: 1000 });
    this.client = options.client;
    this.bucket = options.bucket;
    this.pageSize = pageSize;
  }

  /**
   * Uploads the object; with `ifNoneMatch: '*'` only when the key does not exist.
   * @throws OmniRelayError already-exists `resourcelease.objectstorage.exists`; unavailable
   *   `resourcelease.objectstorage.store_failed`; cancelled `resourcelease.cancelled`.
   */
  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const { contentType } = options;
    if (options.signal?.aborted) throw cancelledError(options.signal);
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: bytes,
      ContentType: contentType,
      ContentLength: bytes.byteLength,
      ...(options.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : {}),
    });
    try {
      await this.client.send(command, options.signal ? { abortSignal: options.signal } : {});
    } catch (error) {
      // The SDK reports an abort as a failed request; it is the caller's cancellation, not a store outage.
      if (options.signal?.aborted) throw cancelledError(options.signal);
      const status = statusOf(error);
      if (options.ifNoneMatch === "*" && (status === 412 || status === 409)) throw existsError(key, error);
      throw storeError("put", key, error);
    }
  }

  /**
   * Downloads the object, `undefined` when it does not exist.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed`; cancelled `resourcelease.cancelled`.
   */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
        options.signal ? { abortSignal: options.signal } : {},
      );
      if (!out.Body) return new Uint8Array();
      return await out.Body.transformToByteArray();
    } catch (error) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      const name = (error as SdkError)?.name;
      if (statusOf(error) === 404 || name === "NoSuchKey" || name === "NotFound") return undefined;
      throw storeError("get", key, error);
    }
  }

  /**
   * Lists keys with `prefix` in key order, strictly after `startAfter`, a page at a time.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` (also when the service returns a
   *   continuation token twice, which would request the same pages forever); cancelled `resourcelease.cancelled`.
   */
  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    let token: string | undefined;
    const tokens = new PageTokens(prefix);
    do {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: this.pageSize,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
            ...(token === undefined && startAfter !== undefined ? { StartAfter: startAfter } : {}),
          }),
          options.signal ? { abortSignal: options.signal } : {},
        );
      } catch (error) {
        if (options.signal?.aborted) throw cancelledError(options.signal);
        throw storeError("list", prefix, error);
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined || (startAfter !== undefined && item.Key <= startAfter)) continue;
        yield item.Size === undefined ? { key: item.Key } : { key: item.Key, size: item.Size };
      }
      token = page.IsTruncated ? tokens.next(page.NextContinuationToken) : undefined;
    } while (token !== undefined);
  }
}
