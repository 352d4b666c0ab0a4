import { type CallOptions, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { decodeReplicationEvent } from "@omnirelay/core/wire";
import { cancelledError, corruptError, storeError, tailLossError, tailLossMessage, withMetadata } from "./errors.js";
import {
  bucketOf,
  bucketPrefix,
  type CheckpointJson,
  checkPrefix,
  checkpointKey,
  eventsPrefix,
  parseCheckpoint,
  parseSegmentKey,
  segmentKey,
  segmentLines,
} from "./layout.js";

/** Where a reader is: the last event it delivered and the segment holding it. Store it to resume later. */
export interface ObjectStorageReadCheckpoint {
  /** Sequence number of the last delivered event. */
  readonly sequence: number;
  /** Key of the segment that holds it. */
  readonly key: string;
}

/** Why a segment could not be read. */
export type ObjectStorageCorruptReason =
  /** Listed but gone when fetched (deleted by retention, or the checkpoint names a removed segment). */
  | "missing"
  /** A line is not valid UTF-8 (bytes were damaged; they are never decoded as U+FFFD). */
  | "encoding"
  /** A line is not JSON. */
  | "json"
  /** A line is JSON but not a valid event envelope. */
  | "decode"
  /** The first event's sequence number is not the one in the segment key. */
  | "first_sequence"
  /** An event repeats or goes back (overlapping segments). */
  | "order"
  /** The segment holds no events. */
  | "empty"
  /**
   * The stored log ends below the checkpoint's `lastSequence`: events the writer had stored (and acknowledged) before
   * it wrote the checkpoint are gone, e.g. the newest segment lost its last lines. `key` is the segment the checkpoint
   * names.
   */
  | "tail";

/** One result of {@link ObjectStorageEventReader.entries}: an event, a gap, or a corrupt segment. */
export type ObjectStorageReadEntry =
  | {
      readonly kind: "event";
      readonly event: ResourceLeaseReplicationEvent;
      /** Pass this to `entries` to continue after this event. */
      readonly checkpoint: ObjectStorageReadCheckpoint;
    }
  | {
      readonly kind: "gap";
      /** First missing sequence number. */
      readonly fromSequence: number;
      /** Last missing sequence number. */
      readonly toSequence: number;
      /** Segment in which the stream continues. */
      readonly key: string;
    }
  | {
      readonly kind: "corrupt";
      readonly key: string;
      readonly reason: ObjectStorageCorruptReason;
      /** 1-based line of the first bad line, when the problem is a line. */
      readonly line?: number;
      /** For reason `tail`: the first lost sequence number (the last one stored + 1). */
      readonly fromSequence?: number;
      /** For reason `tail`: the checkpoint's `lastSequence`, the last lost sequence number. */
      readonly toSequence?: number;
      readonly message: string;
    };

/** Options of {@link ObjectStorageEventReader}. */
export interface ObjectStorageEventReaderOptions {
  /** The store holding the log. */
  readonly store: ResourceLeaseObjectStore;
  /** Prefix the log was written under (ends with `/`). @defaultValue 'resourcelease/' */
  readonly keyPrefix?: string;
}

/** Options of one read. */
export interface ObjectStorageReadOptions extends CallOptions {
  /**
   * Where to start: a sequence number (events below it are skipped; if the log has none at it, a gap is reported),
   * or a checkpoint from an earlier entry (reading continues right after it, without listing earlier buckets).
   * @defaultValue undefined (the first stored event; nothing before it counts as a gap)
   */
  readonly from?: number | ObjectStorageReadCheckpoint;
}

/**
 * Streams a prefix's replication events in order, for restore and governance replay. It verifies that sequence
 * numbers continue without gaps and reports gaps and unreadable segments as typed entries instead of throwing, so
 * an audit job can log them and go on. `events()` is the strict form: it throws at the first problem.
 */
export class ObjectStorageEventReader {
  /** The prefix read. */
  readonly keyPrefix: string;
  private readonly store: ResourceLeaseObjectStore;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: ObjectStorageEventReaderOptions) {
    this.store = options?.store;
    if (!this.store || typeof this.store.list !== "function") {
      throw OmniRelayError.invalidOption("store", "store is required.");
    }
    this.keyPrefix = checkPrefix(options.keyPrefix ?? "resourcelease/", "keyPrefix");
  }

  /**
   * Yields events, gaps and corrupt segments in key order. A corrupt segment yields one `corrupt` entry and is
   * skipped; the events it held then show up as a `gap` when the stream continues. When the stream ends below the
   * `lastSequence` of the prefix's checkpoint object (read before listing), a last `corrupt` entry with reason
   * `tail` reports the lost events.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` when the store fails;
   *   cancelled `resourcelease.cancelled` when `signal` aborts.
   */
  async *entries(options: ObjectStorageReadOptions = {}): AsyncGenerator<ObjectStorageReadEntry> {
    const { signal } = options;
    const from = options.from;
    // Read before any listing: every segment the checkpoint covers was stored before it, so the listing must show it.
    const checkpoint = await this.readCheckpoint(signal);
    // Highest sequence number held by a readable segment (skipped ones included): where the stored log ends.
    let stored = 0;
    let expected: number | undefined;
    let skipThrough = 0;
    let startKey: string | undefined;
    if (typeof from === "object" && from !== null) {
      expected = from.sequence + 1;
      skipThrough = from.sequence;
      startKey = from.key;
    } else if (typeof from === "number" && from > 1) {
      expected = from;
      skipThrough = from - 1;
      startKey = await this.segmentAtOrBefore(from, signal);
    }
    const keys = this.keysFrom(startKey, signal);
    for await (const key of keys) {
      if (signal?.aborted) throw cancelledError(signal);
      const bytes = await this.store.get(key, signal ? { signal } : {}).catch((error: unknown) => {
        throw storeError("get", key, error);
      });
      if (bytes === undefined) {
        yield { kind: "corrupt", key, reason: "missing", message: `Segment ${key} was listed but does not exist.` };
        continue;
      }
      const { lines, invalidLines } = segmentLines(bytes);
      const invalidLine = invalidLines?.[0];
      if (invalidLine !== undefined) {
        const message = `Line ${invalidLine} of ${key} is not valid UTF-8.`;
        yield { kind: "corrupt", key, reason: "encoding", line: invalidLine, message };
        continue;
      }
      if (lines.length === 0) {
        yield { kind: "corrupt", key, reason: "empty", message: `Segment ${key} holds no events.` };
        continue;
      }
      const first = parseSegmentKey(this.keyPrefix, key) as number;
      const decoded: ResourceLeaseReplicationEvent[] = [];
      let problem: ObjectStorageReadEntry | undefined;
      for (const [index, line] of lines.entries()) {
        let json: unknown;
        try {
          json = JSON.parse(line);
        } catch (error) {
          const message = `Line ${index + 1} of ${key} is not JSON: ${(error as Error).message}`;
          problem = { kind: "corrupt", key, reason: "json", line: index + 1, message };
          break;
        }
        try {
          decoded.push(decodeReplicationEvent(json));
        } catch (error) {
          const message = `Line ${index + 1} of ${key} is not a replication event: ${(error as Error).message}`;
          problem = { kind: "corrupt", key, reason: "decode", line: index + 1, message };
          break;
        }
      }
      if (!problem && decoded[0]?.sequenceNumber !== first) {
        const message = `Segment ${key} starts at event ${String(decoded[0]?.sequenceNumber)}, not ${first}.`;
        problem = { kind: "corrupt", key, reason: "first_sequence", line: 1, message };
      }
      if (problem) {
        yield problem;
        continue;
      }
      for (const event of decoded) stored = Math.max(stored, event.sequenceNumber);
      for (const [index, event] of decoded.entries()) {
        const seq = event.sequenceNumber;
        if (seq <= skipThrough) continue;
        if (expected !== undefined && seq < expected) {
          const message = `Event ${seq} in ${key} repeats or goes back (expected ${expected}).`;
          yield { kind: "corrupt", key, reason: "order", line: index + 1, message };
          break;
        }
        if (expected !== undefined && seq > expected) {
          yield { kind: "gap", fromSequence: expected, toSequence: seq - 1, key };
        }
        expected = seq + 1;
        yield { kind: "event", event, checkpoint: { sequence: seq, key } };
      }
    }
    if (checkpoint && stored < checkpoint.lastSequence) {
      const loss = { key: checkpoint.segmentKey, lastSequence: stored, checkpointSequence: checkpoint.lastSequence };
      yield {
        kind: "corrupt",
        key: loss.key,
        reason: "tail",
        fromSequence: stored + 1,
        toSequence: checkpoint.lastSequence,
        message: `Segment ${loss.key}: ${tailLossMessage(loss)}`,
      };
    }
  }

  /**
   * Yields events in order, throwing at the first gap or corrupt segment.
   * @throws OmniRelayError data-loss `resourcelease.objectstorage.corrupt` (metadata `key`, `reason`, `line` when
   *   a line is bad; for a gap `reason: 'gap'` with `sequence`; for a log that ends below its checkpoint
   *   `reason: 'tail'` with `sequence` (the first lost event), `lastSequence` and `checkpointSequence`);
   *   unavailable `resourcelease.objectstorage.store_failed`.
   */
  async *events(options: ObjectStorageReadOptions = {}): AsyncGenerator<ResourceLeaseReplicationEvent> {
    for await (const entry of this.entries(options)) {
      if (entry.kind === "event") yield entry.event;
      else if (entry.kind === "gap") {
        const error = corruptError(entry.key, "gap", `events ${entry.fromSequence}..${entry.toSequence} are missing.`);
        throw new OmniRelayError({
          status: error.status,
          code: error.code,
          message: error.message,
          metadata: { ...error.metadata, sequence: String(entry.fromSequence) },
        });
      } else if (entry.reason === "tail" && entry.fromSequence !== undefined && entry.toSequence !== undefined) {
        throw tailLossError({
          key: entry.key,
          lastSequence: entry.fromSequence - 1,
          checkpointSequence: entry.toSequence,
        });
      } else {
        const error = corruptError(entry.key, entry.reason, entry.message);
        throw entry.line === undefined ? error : withMetadata(error, { line: String(entry.line) });
      }
    }
  }

  /** The prefix's checkpoint object, or `undefined` when there is none or it is unreadable (it is only a hint). */
  private async readCheckpoint(signal?: AbortSignal): Promise<CheckpointJson | undefined> {
    const key = checkpointKey(this.keyPrefix);
    const bytes = await this.store.get(key, signal ? { signal } : {}).catch((error: unknown) => {
      throw storeError("get", key, error);
    });
    return bytes === undefined ? undefined : parseCheckpoint(this.keyPrefix, bytes);
  }

  /** Segment keys from `startKey` (inclusive) on, or every segment when it is undefined. */
  private async *keysFrom(startKey: string | undefined, signal?: AbortSignal): AsyncGenerator<string> {
    if (startKey !== undefined) yield startKey;
    for await (const entry of this.store.list(eventsPrefix(this.keyPrefix), startKey, signal ? { signal } : {})) {
      if (parseSegmentKey(this.keyPrefix, entry.key) !== undefined) yield entry.key;
    }
  }

  /** The segment that holds `sequence`: the newest one at or before it, found by listing at most two buckets. */
  private async segmentAtOrBefore(sequence: number, signal?: AbortSignal): Promise<string | undefined> {
    const target = segmentKey(this.keyPrefix, sequence);
    for (const bucket of [bucketOf(sequence), bucketOf(sequence) - 1]) {
      if (bucket < 0) break;
      let best: string | undefined;
      for await (const entry of this.store.list(
        bucketPrefix(this.keyPrefix, bucket),
        undefined,
        signal ? { signal } : {},
      )) {
        if (entry.key > target) break;
        if (parseSegmentKey(this.keyPrefix, entry.key) !== undefined) best = entry.key;
      }
      if (best !== undefined) return best;
    }
    return undefined;
  }
}
