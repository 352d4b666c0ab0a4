import { ErrorCodes, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { decodeReplicationEvent } from "@omnirelay/core/wire";
import { corruptError } from "./errors.js";

/**
 * The headers of a log message. Every message carries the format, the first and last event sequence numbers of its
 * batch and its part (`i/n`); parts after the first also carry the stream sequence of the first part, so a reader
 * can find the start of a batch. Internal.
 */
export const FrameHeaders = {
  format: "Omni-Log",
  first: "Omni-First",
  last: "Omni-Last",
  part: "Omni-Part",
  batchStart: "Omni-Batch-Start",
  /** `owner` on an owner-epoch marker (absent on event batches). */
  kind: "Omni-Kind",
  /** An owner-epoch marker's epoch and node id. */
  ownerEpoch: "Omni-Owner-Epoch",
  owner: "Omni-Owner",
  /** An owner-epoch marker's place: the last event sequence before it. */
  after: "Omni-After",
} as const;

/**
 * An owner-epoch marker: a message a new owner of the shard appends before it serves (no events; the queue never
 * sees it), so the log records each handover, and the old owner's next append expects a stale subject sequence and
 * is refused.
 */
export interface OwnerMarker {
  /** Node id of the new owner. */
  readonly owner: string;
  /** Its URL. */
  readonly url: string;
  /** Its ownership epoch (increases with every change of owner). */
  readonly epoch: number;
}

/** The format this package writes. */
export const FRAME_FORMAT = "1";

/** One message to append: a whole batch, or one part of a batch larger than the server's max payload. Internal. */
export interface Frame {
  readonly body: Uint8Array;
  readonly first: number;
  readonly last: number;
  readonly part: number;
  readonly parts: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Frames a batch of encoded events (each one JSON text, in order, numbered `first..last`) as one message, or as
 * `ceil(size / maxBody)` parts when the batch's JSON array is larger than `maxBody` bytes. Internal.
 */
export function frameBatch(
  texts: readonly string[],
  range: { readonly first: number; readonly last: number },
  maxBody: number,
): Frame[] {
  const body = encoder.encode(`[${texts.join(",")}]`);
  const parts = Math.max(1, Math.ceil(body.length / maxBody));
  const frames: Frame[] = [];
  for (let i = 0; i < parts; i++) {
    frames.push({ body: body.subarray(i * maxBody, (i + 1) * maxBody), ...range, part: i + 1, parts });
  }
  return frames;
}

/** A message read back from the shard's subject, its headers parsed. Internal. */
export interface StoredFrame {
  readonly streamSequence: number;
  readonly first: number;
  readonly last: number;
  readonly part: number;
  readonly parts: number;
  /** Stream sequence of part 1 (for parts after the first). */
  readonly batchStart: number | undefined;
  readonly data: Uint8Array;
  /** Set on an owner-epoch marker, which holds no events: its `first` is `last + 1` (the events before it end at `last`). */
  readonly marker?: OwnerMarker;
}

/** The headers of a stored message, as the NATS client gives them. Internal. */
export interface HeaderReader {
  get(name: string): string;
}

function positive(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/**
 * Parses a stored message's headers.
 * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` when they are not what this log writes.
 */
export function readFrame(
  message: { readonly seq: number; readonly data: Uint8Array; readonly header?: HeaderReader | undefined },
  subject: string,
): StoredFrame {
  const get = (name: string) => message.header?.get(name) || undefined;
  const format = get(FrameHeaders.format);
  if (format !== FRAME_FORMAT) {
    throw corruptError(subject, message.seq, `unknown log format '${format ?? "(none)"}'.`);
  }
  if (get(FrameHeaders.kind) === "owner") return readMarker(message, get, subject);
  const first = positive(get(FrameHeaders.first));
  const last = positive(get(FrameHeaders.last));
  const [part, parts] = (get(FrameHeaders.part) ?? "").split("/").map(positive);
  const batchStart = positive(get(FrameHeaders.batchStart));
  if (
    first === undefined ||
    last === undefined ||
    last < first ||
    part === undefined ||
    parts === undefined ||
    part > parts ||
    (part > 1 && batchStart === undefined)
  ) {
    throw corruptError(subject, message.seq, "its headers are missing or inconsistent.");
  }
  return { streamSequence: message.seq, first, last, part, parts, batchStart, data: message.data };
}

function readMarker(
  message: { readonly seq: number; readonly data: Uint8Array },
  get: (name: string) => string | undefined,
  subject: string,
): StoredFrame {
  const after = get(FrameHeaders.after) === "0" ? 0 : positive(get(FrameHeaders.after));
  const epoch = positive(get(FrameHeaders.ownerEpoch));
  const owner = get(FrameHeaders.owner);
  let url: unknown;
  try {
    url = (JSON.parse(decoder.decode(message.data)) as { url?: unknown }).url;
  } catch {
    url = undefined;
  }
  if (after === undefined || epoch === undefined || owner === undefined || typeof url !== "string") {
    throw corruptError(subject, message.seq, "its owner-epoch marker headers are missing or inconsistent.");
  }
  return {
    streamSequence: message.seq,
    first: after + 1,
    last: after,
    part: 1,
    parts: 1,
    batchStart: undefined,
    data: message.data,
    marker: { owner, url, epoch },
  };
}

/** Whether `value` is at most `max` characters without control characters (C0, DEL, C1). Internal. */
export function plainText(value: unknown, max: number): value is string {
  if (typeof value !== "string" || value.length > max) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

/**
 * The headers and body of an owner-epoch marker placed after event `after`. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.argument.invalid` for an epoch that is not a positive safe
 *   integer or an owner that is empty, longer than 200 characters or holds control characters: {@link readFrame}
 *   refuses such a marker, so once stored it would make every later open of the shard's log fail.
 */
export function markerFrame(marker: OwnerMarker, after: number): { headers: [string, string][]; body: Uint8Array } {
  const field = !(Number.isSafeInteger(marker.epoch) && marker.epoch >= 1)
    ? "epoch"
    : marker.owner === "" || !plainText(marker.owner, 200)
      ? "owner"
      : undefined;
  if (field !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.argumentInvalid,
      message: `An owner-epoch marker's ${field} must be ${field === "epoch" ? "a positive safe integer" : "1-200 characters without control characters"}; nothing was appended.`,
      metadata: { field },
    });
  }
  return {
    headers: [
      [FrameHeaders.format, FRAME_FORMAT],
      [FrameHeaders.kind, "owner"],
      [FrameHeaders.ownerEpoch, String(marker.epoch)],
      [FrameHeaders.owner, marker.owner],
      [FrameHeaders.after, String(after)],
    ],
    body: encoder.encode(JSON.stringify(marker)),
  };
}

/**
 * Puts the parts of batches back together, in subject order, and decodes each complete batch. A batch whose parts
 * stop before its last one (its writer stopped between parts; its publish never resolved) is dropped when the next
 * batch starts, or at the end. Internal.
 */
export class FrameAssembler {
  private parts: StoredFrame[] = [];

  constructor(private readonly subject: string) {}

  /**
   * Adds the next stored message; returns the events of the batch it completes, or `undefined`.
   * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` for a batch that does not decode.
   */
  push(frame: StoredFrame): ResourceLeaseReplicationEvent[] | undefined {
    if (frame.marker !== undefined) {
      this.parts = []; // a batch cut short before the marker is not part of the log
      return [];
    }
    if (frame.part === 1) {
      this.parts = [frame];
    } else {
      const head = this.parts[0];
      const fits =
        head !== undefined &&
        head.streamSequence === frame.batchStart &&
        head.first === frame.first &&
        head.parts === frame.parts &&
        this.parts.length + 1 === frame.part;
      // A part without the ones before it belongs to a batch that started before this read: drop it.
      if (!fits) {
        this.parts = [];
        return undefined;
      }
      this.parts.push(frame);
    }
    if (this.parts.length < frame.parts) return undefined;
    const complete = this.parts;
    this.parts = [];
    return decodeBatch(complete, this.subject);
  }
}

function decodeBatch(parts: readonly StoredFrame[], subject: string): ResourceLeaseReplicationEvent[] {
  const head = parts[0] as StoredFrame;
  const fail = (reason: string) => corruptError(subject, head.streamSequence, reason);
  let bytes: Uint8Array;
  if (parts.length === 1) bytes = head.data;
  else {
    bytes = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p.data, at);
      at += p.data.length;
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch {
    throw fail("its body is not UTF-8 JSON.");
  }
  if (!Array.isArray(json) || json.length !== head.last - head.first + 1) {
    throw fail(`its body is not an array of the ${head.last - head.first + 1} events its headers announce.`);
  }
  return json.map((value, i) => {
    let event: ResourceLeaseReplicationEvent;
    try {
      event = decodeReplicationEvent(value);
    } catch (error) {
      throw fail(`event ${i} does not decode: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (event.sequenceNumber !== head.first + i) {
      throw fail(`event ${i} is numbered ${event.sequenceNumber}, not ${head.first + i}.`);
    }
    return event;
  });
}
