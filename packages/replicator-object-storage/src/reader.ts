import { type CallOptions, ErrorCodes, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import type { ObjectListEntry, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { decodeReplicationEvent, integerOption } from "@omnirelay/core/wire";
import { firstBrokenLink } from "./chain-check.js";
import { cancelledError, corruptError, storeError, tailLossError, tailLossMessage, withMetadata } from "./errors.js";
import {
  bucketOf,
  bucketPrefix,
  type CheckpointJson,
  checkPrefix,
  checkpointKey,
  eventsPrefix,
  MAX_SEGMENT_BYTES,
  parseCheckpoint,
  parseSegmentKey,
  segmentKey,
  segmentLines,
} from "./layout.js";
import { ascendingListing } from "./listing.js";

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
   * The segment is larger than the reader's `maxSegmentBytes` (by its listed size, or its bytes once fetched); it is
   * not decoded, so a damaged or planted giant object cannot exhaust memory.
   */
  | "size"
  /**
   * An event's `previousHash` is not the hash of the event before it: one of the two was altered (bit rot, an edit).
   * `line` is the first of them in this segment, which is not delivered (the rest of the segment is skipped). When
   * the link from the previous segment's last event (already delivered) breaks, `line` is 1 and the segment is still
   * delivered if its own links hold.
   */
  | "chain"
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
  /**
   * Largest segment object the reader decodes; a larger one is reported as `corrupt` with reason `size`. Lower it to
   * bound a reader's memory; the writer never splits by bytes, so keep it above your largest segment.
   * @defaultValue 536870888 (the longest string V8 can build: no larger segment could be decoded anyway)
   */
  readonly maxSegmentBytes?: number;
}

/** Options of one read. */
export interface ObjectStorageReadOptions extends CallOptions {
  /**
   * Where to start: a sequence number (events below it are skipped; if the log has none at it, a gap is reported;
   * above every safe integer, nothing is read), or a checkpoint from an earlier entry (reading continues right after
   * it, without listing earlier buckets; its `key` must be a segment of this prefix, and `sequence` an integer in it).
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
  private readonly maxSegmentBytes: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: ObjectStorageEventReaderOptions) {
    this.store = options?.store;
    if (!this.store || typeof this.store.list !== "function") {
      throw OmniRelayError.invalidOption("store", "store is required.");
    }
    this.keyPrefix = checkPrefix(options.keyPrefix ?? "resourcelease/", "keyPrefix");
    this.maxSegmentBytes = integerOption("maxSegmentBytes", options.maxSegmentBytes, {
      min: 1,
      max: MAX_SEGMENT_BYTES,
      fallback: MAX_SEGMENT_BYTES,
    });
  }

  /**
   * Yields events, gaps and corrupt segments in key order. A corrupt segment yields one `corrupt` entry and is
   * skipped; the events it held then show up as a `gap` when the stream continues. When the stream ends below the
   * `lastSequence` of the prefix's checkpoint object (read before listing), a last `corrupt` entry with reason
   * `tail` reports the lost events.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` when the store fails (or lists
   *   keys out of order or twice); cancelled `resourcelease.cancelled` when `signal` aborts; invalid-argument
   *   `resourcelease.argument.invalid` (metadata `field: 'from'`) for a checkpoint `from` outside this prefix.
   */
  async *entries(options: ObjectStorageReadOptions = {}): AsyncGenerator<ObjectStorageReadEntry> {
    const { signal } = options;
    const from = checkFrom(this.keyPrefix, options.from);
    // Every stored sequence number is a safe integer, so none is at or above this `from`.
    if (typeof from === "number" && from > Number.MAX_SAFE_INTEGER) return;
    // Read before any listing: every segment the checkpoint covers was stored before it, so the listing must show it.
    const checkpoint = await this.readCheckpoint(signal);
    // Highest sequence number held by a readable segment (skipped ones included): where the stored log ends.
    let stored = 0;
    // Last event of the previous segment read whole, for the hash link into the next one.
    let previous: ResourceLeaseReplicationEvent | undefined;
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
    for await (const { key, size } of keys) {
      if (signal?.aborted) throw cancelledError(signal);
      if (size !== undefined && size > this.maxSegmentBytes) {
        yield this.tooLarge(key, size);
        continue;
      }
      const bytes = await this.store.get(key, signal ? { signal } : {}).catch((error: unknown) => {
        throw storeError("get", key, error);
      });
      if (bytes === undefined) {
        yield { kind: "corrupt", key, reason: "missing", message: `Segment ${key} was listed but does not exist.` };
        continue;
      }
      if (bytes.byteLength > this.maxSegmentBytes) {
        yield this.tooLarge(key, bytes.byteLength);
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
      let broken = firstBrokenLink(decoded, previous);
      if (broken === 0) {
        // The link from the previous segment's last event (already delivered) breaks. When this segment's own links
        // hold, that event was the altered one, so this segment is still delivered.
        yield chainEntry(key, 0, decoded[0] as ResourceLeaseReplicationEvent);
        broken = firstBrokenLink(decoded, undefined);
      }
      previous = broken < 0 ? decoded.at(-1) : undefined;
      for (const [index, event] of decoded.entries()) {
        const seq = event.sequenceNumber;
        // Stop before the event whose successor's link does not match: it (or that link) was altered.
        if (broken > 0 && index === broken - 1) {
          yield chainEntry(key, index, decoded[broken] as ResourceLeaseReplicationEvent);
          break;
        }
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

  private tooLarge(key: string, size: number): ObjectStorageReadEntry {
    const message = `Segment ${key} holds ${size} bytes, more than maxSegmentBytes (${this.maxSegmentBytes}); it was not decoded.`;
    return { kind: "corrupt", key, reason: "size", message };
  }

  /** Segment entries from `startKey` (inclusive, size unknown) on, or every segment when it is undefined. */
  private async *keysFrom(startKey: string | undefined, signal?: AbortSignal): AsyncGenerator<ObjectListEntry> {
    if (startKey !== undefined) yield { key: startKey };
    const prefix = eventsPrefix(this.keyPrefix);
    const listing = this.store.list(prefix, startKey, signal ? { signal } : {});
    for await (const entry of ascendingListing(listing, prefix, startKey)) {
      if (parseSegmentKey(this.keyPrefix, entry.key) !== undefined) yield entry;
    }
  }

  /** The segment that holds `sequence`: the newest one at or before it, found by listing at most two buckets. */
  private async segmentAtOrBefore(sequence: number, signal?: AbortSignal): Promise<string | undefined> {
    const target = segmentKey(this.keyPrefix, sequence);
    for (const bucket of [bucketOf(sequence), bucketOf(sequence) - 1]) {
      if (bucket < 0) break;
      let best: string | undefined;
      const prefix = bucketPrefix(this.keyPrefix, bucket);
      for await (const entry of ascendingListing(
        this.store.list(prefix, undefined, signal ? { signal } : {}),
        prefix,
      )) {
        if (entry.key > target) break;
        if (parseSegmentKey(this.keyPrefix, entry.key) !== undefined) best = entry.key;
      }
      if (best !== undefined) return best;
    }
    return undefined;
  }
}

/**
 * Validates a checkpoint `from`: it is stored by the caller (often next to the log), so a tampered one must not make
 * the reader fetch a key outside its prefix or start from a sequence number the named segment cannot hold.
 */
function checkFrom(prefix: string, from: ObjectStorageReadOptions["from"]): ObjectStorageReadOptions["from"] {
  if (typeof from !== "object" || from === null) return from;
  const first = typeof from.key === "string" ? parseSegmentKey(prefix, from.key) : undefined;
  if (first === undefined || !Number.isSafeInteger(from.sequence) || from.sequence < first - 1) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.argumentInvalid,
      message: `from must be a checkpoint of an entry of prefix ${JSON.stringify(prefix)}: a segment key of it and a sequence number at or after that segment's first event - 1, got ${JSON.stringify({ key: String(from.key).slice(0, 200), sequence: from.sequence })}.`,
      metadata: { field: "from" },
    });
  }
  return from;
}

/** The `chain` entry of a link that breaks into `next`, reported at line `index + 1` of `key`. */
function chainEntry(key: string, index: number, next: ResourceLeaseReplicationEvent): ObjectStorageReadEntry {
  const seq = next.sequenceNumber;
  const message = `The hash chain breaks into event ${seq} in ${key}: its previousHash is not the hash of event ${seq - 1}, so one of them was altered.`;
  return { kind: "corrupt", key, reason: "chain", line: index + 1, message };
}
