import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";

/**
 * Key layout (version 1) of a log under `prefix`. Internal. A segment holds a run of consecutive events, one JSON
 * line each, and is named after its first sequence number, zero-padded to 20 digits, inside a "bucket" folder named
 * after the first 14 of those digits (one folder per million sequence numbers):
 *
 *   {prefix}events/00000000000000/00000000000000000001.jsonl
 *   {prefix}events/00000000000001/00000000000001000042.jsonl
 *   {prefix}checkpoint.json
 *
 * Keys sort in sequence order on every store (fixed-width digits), the checkpoint never mixes with segments, and a
 * restart needs to list at most the bucket of the checkpoint and the next one.
 */
export const SEQUENCE_DIGITS = 20;
/** Digits of the bucket folder: one bucket per 10^6 sequence numbers. Internal. */
export const BUCKET_DIGITS = 14;
/** Sequence numbers per bucket. Internal. */
export const BUCKET_SIZE = 10 ** (SEQUENCE_DIGITS - BUCKET_DIGITS);
/**
 * Largest segment a reader decodes by default: the longest string V8 builds (0x1fffffe8 UTF-16 units; a segment has
 * at least one byte per unit), so any larger one fails to decode anyway, with an uncoded error. Internal.
 */
export const MAX_SEGMENT_BYTES = 0x1fffffe8;
/** Segment content type. Internal. */
export const SEGMENT_CONTENT_TYPE = "application/x-ndjson";

const SEGMENT_NAME = /^events\/(\d{14})\/(\d{20})\.jsonl$/;

/** `{prefix}events/`. Internal. */
export function eventsPrefix(prefix: string): string {
  return `${prefix}events/`;
}

/** `{prefix}checkpoint.json`. Internal. */
export function checkpointKey(prefix: string): string {
  return `${prefix}checkpoint.json`;
}

/** The key of the segment whose first event is `sequence`. Internal. */
export function segmentKey(prefix: string, sequence: number): string {
  const digits = String(sequence).padStart(SEQUENCE_DIGITS, "0");
  return `${prefix}events/${digits.slice(0, BUCKET_DIGITS)}/${digits}.jsonl`;
}

/** Bucket index of a sequence number. Internal. */
export function bucketOf(sequence: number): number {
  return Math.floor(sequence / BUCKET_SIZE);
}

/** `{prefix}events/{bucket}/`. Internal. */
export function bucketPrefix(prefix: string, bucket: number): string {
  return `${prefix}events/${String(bucket).padStart(BUCKET_DIGITS, "0")}/`;
}

/** First sequence number of a segment key, or `undefined` when the key is not a segment of `prefix`. Internal. */
export function parseSegmentKey(prefix: string, key: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = SEGMENT_NAME.exec(key.slice(prefix.length));
  if (!match) return undefined;
  const sequence = Number(match[2]);
  if (!Number.isSafeInteger(sequence) || sequence < 1) return undefined;
  if ((match[2] as string).slice(0, BUCKET_DIGITS) !== match[1]) return undefined;
  return sequence;
}

/**
 * Validates a key prefix: a string without `..` segments or a leading `/`; empty means the store's root.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`.
 */
export function checkPrefix(value: unknown, option: string): string {
  if (typeof value !== "string") throw OmniRelayError.invalidOption(option, `${option} must be a string.`);
  if (value.startsWith("/") || value.split("/").some((part) => part === ".." || part === ".")) {
    throw OmniRelayError.invalidOption(option, `${option} must not start with '/' or contain '.' or '..' segments.`);
  }
  if (value.length > 0 && !value.endsWith("/")) {
    throw OmniRelayError.invalidOption(
      option,
      `${option} must end with '/' (it names a folder), got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** The JSON-lines text of a replication-event segment: one encoded envelope per line. Internal. */
export function encodeEventLines(events: readonly ResourceLeaseReplicationEvent[]): string {
  let out = "";
  for (const event of events) out += `${JSON.stringify(encodeReplicationEvent(event))}\n`;
  return out;
}

/** The non-empty lines of a segment. Internal. */
export interface SegmentText {
  /** Non-empty lines, in order; in the lines of `invalidLines`, bytes that are not UTF-8 appear as U+FFFD. */
  readonly lines: string[];
  /**
   * 1-based numbers (counting non-empty lines, as `lines` does), ascending, of the lines that are not valid UTF-8;
   * absent when every line is.
   */
  readonly invalidLines?: readonly number[];
}

// Fatal: a byte sequence that is not UTF-8 is reported, never silently read as U+FFFD (which changes an event's text).
const utf8 = new TextDecoder("utf-8", { fatal: true });
const NEWLINE = 0x0a;

/** Splits segment bytes into non-empty lines and finds the lines that are not valid UTF-8, if any. Internal. */
export function segmentLines(bytes: Uint8Array): SegmentText {
  try {
    return { lines: splitLines(utf8.decode(bytes)) };
  } catch {
    // U+FFFD never is a newline, so the lines are the same ones; the caller decides whether the damage matters.
    const lines = splitLines(new TextDecoder("utf-8", { fatal: false }).decode(bytes));
    return { lines, invalidLines: invalidLinesOf(bytes) };
  }
}

function splitLines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim().length > 0);
}

/**
 * The 1-based numbers (among non-empty lines) of the lines that are not valid UTF-8. A newline byte never occurs
 * inside a UTF-8 sequence, so each line can be checked on its own.
 */
function invalidLinesOf(bytes: Uint8Array): number[] {
  const invalid: number[] = [];
  let line = 0;
  for (let start = 0; start <= bytes.length; ) {
    let end = bytes.indexOf(NEWLINE, start);
    if (end < 0) end = bytes.length;
    try {
      if (utf8.decode(bytes.subarray(start, end)).trim().length > 0) line++;
    } catch {
      invalid.push(++line);
    }
    start = end + 1;
  }
  return invalid;
}

/** Checkpoint object content. Internal. */
export interface CheckpointJson {
  readonly version: 1;
  readonly lastSequence: number;
  readonly segmentKey: string;
  /** ISO-8601. */
  readonly updatedAt: string;
}

/** Parses a checkpoint object; `undefined` when it is not one. Internal. */
export function parseCheckpoint(prefix: string, bytes: Uint8Array): CheckpointJson | undefined {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as Partial<CheckpointJson>;
    if (json?.version !== 1 || typeof json.segmentKey !== "string") return undefined;
    if (parseSegmentKey(prefix, json.segmentKey) === undefined) return undefined;
    if (typeof json.lastSequence !== "number" || !Number.isSafeInteger(json.lastSequence)) return undefined;
    return json as CheckpointJson;
  } catch {
    return undefined;
  }
}
