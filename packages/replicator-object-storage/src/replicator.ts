import {
  type CallOptions,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  type ResourceLeaseEventLog,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
  silentLogger,
} from "@omnirelay/core";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { checkPrefix, encodeEventLines, SEGMENT_CONTENT_TYPE } from "./layout.js";
import { ObjectStorageEventReader } from "./reader.js";
import { checkWriterNumbers, SegmentWriter } from "./segment-writer.js";

/** Options of {@link ObjectStorageResourceLeaseReplicator}. */
export interface ObjectStorageResourceLeaseReplicatorOptions {
  /**
   * Folder the log lives in; must end with `/` (or be empty for the store's root). One writer per prefix: give
   * every queue or shard its own.
   * @defaultValue 'resourcelease/'
   */
  readonly keyPrefix?: string;
  /** Most events in one segment object; a larger publish is split into several segments. @defaultValue 1000 */
  readonly maxSegmentEvents?: number;
  /** The checkpoint object is rewritten after this many segments (and on close). @defaultValue 16 */
  readonly checkpointEverySegments?: number;
  /** Sequence number the first event of an empty log must have. @defaultValue 1 */
  readonly firstSequence?: number;
  /** Receives a warning when the checkpoint cannot be stored or read. @defaultValue silentLogger */
  readonly logger?: Logger;
}

/**
 * A durable replicator that appends the queue's events to object storage (S3, GCS, Azure Blob or a filesystem
 * through a {@link ResourceLeaseObjectStore}) as immutable JSON-lines segments, and reads them back as a
 * {@link ResourceLeaseEventLog}.
 *
 * - Every publish writes its events as one segment (split at `maxSegmentEvents`) with a create-if-absent put, and
 *   resolves only after the store acknowledged it. Nothing is ever overwritten: a second or stale writer on the same
 *   prefix gets `already-exists` and the replicator refuses further writes until it is reopened.
 * - Sequence numbers are the queue's and must continue at exactly the last stored one + 1, so the log has no gaps;
 *   a producer that starts again at 1 after a restart is refused, not allowed to clobber history.
 * - On start it resumes after the newest segment, found from a small checkpoint object plus a listing of at most the
 *   checkpoint's bucket and the next one (never the whole prefix), then one read of that segment. A store that ends
 *   below the checkpoint's `lastSequence` (acknowledged events lost, e.g. a truncated newest segment) is refused with
 *   data-loss, so no new event can take a lost one's sequence number.
 */
export class ObjectStorageResourceLeaseReplicator
  implements ResourceLeaseReplicator, ResourceLeaseEventLog, AsyncDisposable
{
  /** The validated key prefix. */
  readonly keyPrefix: string;
  private readonly writer: SegmentWriter;
  private readonly reader: ObjectStorageEventReader;

  /**
   * Creates the replicator; it resumes from the store on the first call (use {@link open} to resume eagerly).
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
   */
  constructor(store: ResourceLeaseObjectStore, options: ObjectStorageResourceLeaseReplicatorOptions = {}) {
    if (!store || typeof store.put !== "function" || typeof store.list !== "function") {
      throw OmniRelayError.invalidOption("store", "store must be a ResourceLeaseObjectStore.");
    }
    this.keyPrefix = checkPrefix(options.keyPrefix ?? "resourcelease/", "keyPrefix");
    const numbers = checkWriterNumbers(options);
    this.writer = new SegmentWriter({
      store,
      keyPrefix: this.keyPrefix,
      ...numbers,
      logger: options.logger ?? silentLogger,
      contentType: SEGMENT_CONTENT_TYPE,
      what: "object-storage replicator",
      encode: encodeEventLines,
    });
    this.reader = new ObjectStorageEventReader({ store, keyPrefix: this.keyPrefix });
  }

  /**
   * Creates a replicator and resumes from the store before returning it.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; data-loss
   *   `resourcelease.objectstorage.corrupt` when the newest segment is unreadable (reason `tail`, `encoding`,
   *   `missing`) or the store ends below the checkpoint's `lastSequence` (reason `tail`, metadata `key`, `sequence`,
   *   `lastSequence`, `checkpointSequence`); unavailable `resourcelease.objectstorage.store_failed`.
   */
  static async open(
    store: ResourceLeaseObjectStore,
    options: ObjectStorageResourceLeaseReplicatorOptions = {},
  ): Promise<ObjectStorageResourceLeaseReplicator> {
    const replicator = new ObjectStorageResourceLeaseReplicator(store, options);
    await replicator.writer.open();
    return replicator;
  }

  /**
   * Appends `events` (exactly the last sequence + 1 onwards, in order) and resolves when the segment is stored.
   * @throws OmniRelayError failed-precondition `resourcelease.objectstorage.sequence_gap` (nothing written);
   *   already-exists `resourcelease.objectstorage.exists` (another writer owns the prefix; faults the replicator);
   *   unavailable `resourcelease.objectstorage.write_failed` (this or an earlier write failed),
   *   `resourcelease.objectstorage.closed`; data-loss `resourcelease.objectstorage.corrupt` (resume failed);
   *   cancelled `resourcelease.cancelled`.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (!Array.isArray(events)) {
      return Promise.reject(
        new OmniRelayError({
          status: "invalid-argument",
          code: ErrorCodes.replication.eventInvalid,
          message: "events must be an array.",
          metadata: { field: "events" },
        }),
      );
    }
    return this.writer.append(events, options.signal);
  }

  /**
   * Sequence number of the last stored event (0, or `firstSequence - 1`, when the log is empty).
   * @throws OmniRelayError as `open`.
   */
  lastSequence(): Promise<number> {
    return this.writer.lastSequence();
  }

  /**
   * Reads stored events with `sequenceNumber >= fromSequence`, in order, at most `limit`.
   * @throws OmniRelayError data-loss `resourcelease.objectstorage.corrupt` at a gap or unreadable segment, or at the
   *   end when the store holds fewer events than its checkpoint recorded (see `ObjectStorageEventReader.events`);
   *   invalid-argument `resourcelease.argument.invalid` for a bad `limit`.
   */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: "limit must be an integer >= 0.",
        metadata: { field: "limit" },
      });
    }
    const reader = this.reader;
    return {
      async *[Symbol.asyncIterator]() {
        // Above every safe integer no stored event qualifies (the old code read the whole log from 1 instead).
        if (limit === 0 || fromSequence > Number.MAX_SAFE_INTEGER) return;
        let count = 0;
        const from = Number.isSafeInteger(fromSequence) && fromSequence > 1 ? fromSequence : undefined;
        for await (const event of reader.events(from === undefined ? {} : { from })) {
          yield event;
          if (limit !== undefined && ++count >= limit) return;
        }
      },
    };
  }

  /** True after a failed or conflicting write; every later publish rejects until a new replicator is opened. */
  get faulted(): boolean {
    return this.writer.faulted;
  }

  /** Waits for pending writes, stores the checkpoint and refuses later publishes. Idempotent. */
  close(): Promise<void> {
    return this.writer.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
