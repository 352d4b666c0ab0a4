import {
  ErrorCodes,
  isOmniRelayError,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { integerOption } from "@omnirelay/core/wire";
import {
  cancelledError,
  closedError,
  corruptError,
  isObjectExistsError,
  storeError,
  tailLossError,
  withMetadata,
} from "./errors.js";
import {
  BUCKET_SIZE,
  bucketOf,
  bucketPrefix,
  type CheckpointJson,
  checkpointKey,
  eventsPrefix,
  MAX_SEGMENT_BYTES,
  parseCheckpoint,
  parseSegmentKey,
  segmentKey,
  segmentLines,
} from "./layout.js";
import { ascendingListing } from "./listing.js";

/** Settings of a {@link SegmentWriter}. Internal. */
export interface SegmentWriterSettings {
  readonly store: ResourceLeaseObjectStore;
  readonly keyPrefix: string;
  readonly maxSegmentEvents: number;
  readonly checkpointEverySegments: number;
  readonly firstSequence: number;
  readonly logger: Logger;
  readonly contentType: string;
  /** What the writer is, for messages ("object-storage replicator"). */
  readonly what: string;
  /** Text of one segment; every line must be a JSON object with a `sequenceNumber`. */
  readonly encode: (events: readonly ResourceLeaseReplicationEvent[]) => string;
}

/** Validates the shared numeric options. Internal. */
export function checkWriterNumbers(o: {
  maxSegmentEvents?: number | undefined;
  checkpointEverySegments?: number | undefined;
  firstSequence?: number | undefined;
}): { maxSegmentEvents: number; checkpointEverySegments: number; firstSequence: number } {
  return {
    // A segment never spans more than one bucket boundary, which keeps resume to two bucket listings.
    maxSegmentEvents: integerOption("maxSegmentEvents", o.maxSegmentEvents, {
      min: 1,
      max: BUCKET_SIZE,
      fallback: 1000,
    }),
    checkpointEverySegments: integerOption("checkpointEverySegments", o.checkpointEverySegments, {
      min: 1,
      max: 1_000_000,
      fallback: 16,
    }),
    firstSequence: integerOption("firstSequence", o.firstSequence, { min: 1, fallback: 1 }),
  };
}

/** Sequence number of a JSON line, or `undefined`. Internal. */
export function lineSequence(line: string): number | undefined {
  try {
    const value = (JSON.parse(line) as { sequenceNumber?: unknown })?.sequenceNumber;
    return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Appends runs of consecutive events as create-if-absent segment objects and resumes after a restart from the
 * newest segment. Shared by the replicator and the governance sink. Internal.
 */
export class SegmentWriter {
  private readonly s: SegmentWriterSettings;
  private last = 0;
  private lastKey: string | undefined;
  private opening: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private fault: OmniRelayError | undefined;
  private closed = false;
  private sinceCheckpoint = 0;

  constructor(settings: SegmentWriterSettings) {
    this.s = settings;
  }

  /** Resumes from the store (once; a failed attempt is retried by the next call). */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.s.what));
    if (!this.opening) {
      const attempt = this.resume();
      this.opening = attempt;
      attempt.catch(() => {
        if (this.opening === attempt) this.opening = undefined;
      });
    }
    return this.opening;
  }

  /** Last stored sequence number (`firstSequence - 1` when empty), after pending writes. */
  async lastSequence(): Promise<number> {
    await this.open();
    await this.tail;
    return this.last;
  }

  /** True after a failed or conflicting write. */
  get faulted(): boolean {
    return this.fault !== undefined;
  }

  /** Appends `events` in order after every earlier call; resolves when their segments are stored. */
  append(events: readonly ResourceLeaseReplicationEvent[], signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.s.what));
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const run = this.tail.then(() => this.write(events, signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Waits for pending writes, stores a final checkpoint and refuses later calls. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    if (this.opening && this.sinceCheckpoint > 0 && !this.fault) await this.writeCheckpoint();
  }

  private async write(events: readonly ResourceLeaseReplicationEvent[], signal?: AbortSignal): Promise<void> {
    await this.open();
    if (this.fault) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.objectStorage.writeFailed,
        message: `An earlier write of the ${this.s.what} failed (${this.fault.code}); reopen it to resume from the store.`,
        metadata: { sequence: String(events[0]?.sequenceNumber ?? this.last + 1), "fault.code": this.fault.code },
        cause: this.fault,
      });
    }
    if (signal?.aborted) throw cancelledError(signal);
    let expected = this.last + 1;
    for (const event of events) {
      if (event?.sequenceNumber !== expected) {
        throw new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.objectStorage.sequenceGap,
          message: `Event ${String(event?.sequenceNumber)} does not follow ${expected - 1}; the ${this.s.what} accepts exactly the next sequence number and never rewrites history.`,
          metadata: { sequence: String(event?.sequenceNumber), expected: String(expected) },
        });
      }
      expected++;
    }
    // Encode every segment before storing any, so an event that cannot be encoded stores none of the publish.
    const segments: { run: readonly ResourceLeaseReplicationEvent[]; bytes: Uint8Array }[] = [];
    for (let start = 0; start < events.length; start += this.s.maxSegmentEvents) {
      const run = events.slice(start, start + this.s.maxSegmentEvents);
      segments.push({ run, bytes: this.encodeRun(run) });
    }
    for (const { run, bytes } of segments) {
      const first = (run[0] as ResourceLeaseReplicationEvent).sequenceNumber;
      const key = segmentKey(this.s.keyPrefix, first);
      try {
        await this.s.store.put(key, bytes, { contentType: this.s.contentType, ifNoneMatch: "*" });
      } catch (error) {
        this.fault = this.writeFault(error, key, first);
        throw this.fault;
      }
      this.last = (run.at(-1) as ResourceLeaseReplicationEvent).sequenceNumber;
      this.lastKey = key;
      this.sinceCheckpoint++;
    }
    if (this.sinceCheckpoint >= this.s.checkpointEverySegments) await this.writeCheckpoint();
  }

  /**
   * The bytes of one segment. An event the wire format cannot hold (a time outside the Date range, a segment past
   * the longest string) is the caller's error, reported with its code instead of a bare RangeError.
   */
  private encodeRun(run: readonly ResourceLeaseReplicationEvent[]): Uint8Array {
    try {
      return new TextEncoder().encode(this.s.encode(run));
    } catch (error) {
      if (isOmniRelayError(error)) throw error;
      const first = String(run[0]?.sequenceNumber);
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.replication.eventInvalid,
        message: `Events from ${first} cannot be encoded for the ${this.s.what}; nothing was written: ${(error as Error)?.message}`,
        metadata: { field: "events", "replication.sequence": first },
        cause: error,
      });
    }
  }

  private writeFault(error: unknown, key: string, sequence: number): OmniRelayError {
    if (isObjectExistsError(error)) {
      return new OmniRelayError({
        status: "already-exists",
        code: ErrorCodes.objectStorage.exists,
        message: `Segment ${key} already exists: another writer owns prefix ${JSON.stringify(this.s.keyPrefix)} or this one is stale. Nothing was overwritten; reopen to resume after the newest segment.`,
        metadata: { key, sequence: String(sequence) },
        cause: error,
      });
    }
    const cause = isOmniRelayError(error) ? error : storeError("put", key, error);
    return new OmniRelayError({
      status: "unavailable",
      code: ErrorCodes.objectStorage.writeFailed,
      message: `Writing segment ${key} failed: ${cause.message}`,
      metadata: { key, sequence: String(sequence) },
      cause,
    });
  }

  /** The checkpoint is only a hint for a faster restart; failing to store it is logged, not fatal. */
  private async writeCheckpoint(): Promise<void> {
    if (this.lastKey === undefined) return;
    const json: CheckpointJson = {
      version: 1,
      lastSequence: this.last,
      segmentKey: this.lastKey,
      updatedAt: new Date().toISOString(),
    };
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(json));
      await this.s.store.put(checkpointKey(this.s.keyPrefix), bytes, { contentType: "application/json" });
      this.sinceCheckpoint = 0;
    } catch (error) {
      this.s.logger.warn({ err: error, key: checkpointKey(this.s.keyPrefix) }, "object-storage checkpoint not stored");
    }
  }

  /**
   * Finds the newest segment: start at the checkpoint's segment (or the first segment when there is no checkpoint),
   * list the rest of its bucket and each following bucket until one is empty, then read the newest segment to learn
   * its last sequence number. Never lists the whole prefix.
   *
   * The store must then hold at least the checkpoint's `lastSequence`. A checkpoint is written only from what
   * `write` already stored (a segment put resolves before `last` moves, and the checkpoint put comes after), so a
   * crash at any moment leaves it at or behind the segments, never ahead. A log that ends below it lost acknowledged
   * events (a truncated or replaced newest segment); continuing would number new events over them, so it is refused.
   */
  private async resume(): Promise<void> {
    const prefix = this.s.keyPrefix;
    const store = this.s.store;
    let startAfter: string | undefined;
    let bucket: number | undefined;
    const cpBytes = await store.get(checkpointKey(prefix)).catch((error: unknown) => {
      throw storeError("get", checkpointKey(prefix), error);
    });
    const checkpoint = cpBytes === undefined ? undefined : parseCheckpoint(prefix, cpBytes);
    if (cpBytes !== undefined && checkpoint === undefined) {
      this.s.logger.warn(
        { key: checkpointKey(prefix) },
        "object-storage checkpoint unreadable; scanning from the start",
      );
    }
    let newest: string | undefined;
    if (checkpoint) {
      newest = checkpoint.segmentKey;
      startAfter = checkpoint.segmentKey;
      bucket = bucketOf(parseSegmentKey(prefix, checkpoint.segmentKey) as number);
    } else {
      for await (const entry of ascendingListing(store.list(eventsPrefix(prefix)), eventsPrefix(prefix))) {
        const first = parseSegmentKey(prefix, entry.key);
        if (first !== undefined) {
          bucket = bucketOf(first);
          break;
        }
      }
    }
    for (let b = bucket; b !== undefined; b++) {
      let found: string | undefined;
      const after = b === bucket ? startAfter : undefined;
      const listing = store.list(bucketPrefix(prefix, b), after);
      for await (const entry of ascendingListing(listing, bucketPrefix(prefix, b), after)) {
        if (parseSegmentKey(prefix, entry.key) !== undefined) found = entry.key;
      }
      if (found !== undefined) newest = found;
      else if (b !== bucket) break;
    }
    if (newest === undefined) {
      this.last = this.s.firstSequence - 1;
      return;
    }
    const last = await this.readLastSequence(newest);
    if (checkpoint && last < checkpoint.lastSequence) {
      throw tailLossError({
        key: checkpoint.segmentKey,
        lastSequence: last,
        checkpointSequence: checkpoint.lastSequence,
      });
    }
    this.last = last;
    this.lastKey = newest;
  }

  private async readLastSequence(key: string): Promise<number> {
    const bytes = await this.s.store.get(key).catch((error: unknown) => {
      throw storeError("get", key, error);
    });
    if (bytes === undefined) throw corruptError(key, "missing", "the checkpoint names a segment that does not exist.");
    if (bytes.byteLength > MAX_SEGMENT_BYTES) {
      const detail = `the newest segment holds ${bytes.byteLength} bytes, more than any segment can (${MAX_SEGMENT_BYTES}); it cannot be decoded. Inspect it and repair or remove it by hand.`;
      throw corruptError(key, "size", detail);
    }
    const { lines, invalidLines = [] } = segmentLines(bytes);
    // Resuming needs the first and the last line; damage between them is the readers' to report.
    const invalidLine = invalidLines.find((line) => line === 1 || line === lines.length);
    if (invalidLine !== undefined) {
      const error = corruptError(
        key,
        "encoding",
        `line ${invalidLine} of the newest segment is not valid UTF-8, and its first and last lines tell where the log resumes. Inspect it with ObjectStorageEventReader and repair or remove it by hand.`,
      );
      throw withMetadata(error, { line: String(invalidLine) });
    }
    const first = parseSegmentKey(this.s.keyPrefix, key) as number;
    const firstSeen = lines.length > 0 ? lineSequence(lines[0] as string) : undefined;
    const lastSeen = lines.length > 0 ? lineSequence(lines.at(-1) as string) : undefined;
    if (firstSeen !== first || lastSeen === undefined || lastSeen < first) {
      throw corruptError(
        key,
        "tail",
        `the newest segment must start at ${first} and end with a readable line; appending after it could rewrite history. Inspect it with ObjectStorageEventReader and repair or remove it by hand.`,
      );
    }
    return lastSeen;
  }
}
