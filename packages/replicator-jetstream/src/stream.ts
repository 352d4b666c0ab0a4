import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
  StorageType,
  type StoredMsg,
  type StreamInfo,
} from "@nats-io/jetstream";
import { OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { corruptError, unavailableError } from "./errors.js";
import { FrameAssembler, readFrame, type StoredFrame } from "./frames.js";
import type { ResolvedEventLogOptions } from "./options.js";

/** What the stream and subject functions need. Internal. */
export interface StreamAccess {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly settings: ResolvedEventLogOptions;
}

/** Whether a stream subject (with `*` and `>` wildcards) matches a literal subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * Returns the stream's info, creating the stream (file storage, `replicas`, subjects `<prefix>.>`) when it is absent.
 * Two logs creating it at once are fine: the loser reads the winner's.
 * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`; invalid-argument
 *   `resourcelease.options.invalid` when an existing stream does not hold the shard's subject.
 */
export async function ensureStream(access: StreamAccess): Promise<StreamInfo> {
  const { jsm, settings } = access;
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(settings.stream).catch(async (error: unknown) => {
      if ((error as { code?: unknown }).code !== 10059) throw error; // JetStreamApiCodes.StreamNotFound
      return jsm.streams
        .add({
          name: settings.stream,
          subjects: [`${settings.subjectPrefix}.>`],
          storage: StorageType.File,
          num_replicas: settings.replicas,
        })
        .catch(() => jsm.streams.info(settings.stream));
    });
  } catch (error) {
    throw unavailableError(error, settings.stream, "open or create");
  }
  if (!info.config.subjects?.some((pattern) => subjectMatches(pattern, settings.subject))) {
    throw OmniRelayError.invalidOption(
      "stream",
      `Stream ${settings.stream} does not hold subject ${settings.subject} (its subjects: ${info.config.subjects?.join(", ")}).`,
    );
  }
  return info;
}

/** The first message of the shard's subject at or after stream sequence `from`, or `null`. Internal. */
export async function nextFrame(access: StreamAccess, from: number): Promise<StoredFrame | null> {
  const message = await nextMessage(access, from);
  return message && readFrame(message, access.settings.subject);
}

/** The first message of the shard's subject at or after stream sequence `from`, unparsed, or `null`. Internal. */
export async function nextMessage(access: StreamAccess, from: number): Promise<StoredMsg | null> {
  // 2.9 answers `next_by_subj`; the client's type for STREAM.MSG.GET lists only `seq` and `last_by_subj`.
  const query = { seq: from, next_by_subj: access.settings.subject } as unknown as MsgRequest;
  return get(access, query);
}

/** The last message of the shard's subject, or `null` when it has none. Internal. */
export async function lastFrame(access: StreamAccess): Promise<StoredFrame | null> {
  const message = await get(access, { last_by_subj: access.settings.subject });
  return message && readFrame(message, access.settings.subject);
}

async function get(access: StreamAccess, query: MsgRequest): Promise<StoredMsg | null> {
  try {
    return await access.jsm.streams.getMessage(access.settings.stream, query);
  } catch (error) {
    throw unavailableError(error, access.settings.stream, "read");
  }
}

/**
 * Where a read of events from `fromEvent` must start: the stream sequence of the first part of the batch that holds
 * `fromEvent` (or of an earlier one), found by bisecting the stream's sequence numbers with `next_by_subj` gets,
 * about log2(last) round trips. 1 when `fromEvent` is in the first batch. Internal.
 */
export async function locateStart(
  access: StreamAccess,
  fromEvent: number,
  lastStreamSequence: number,
): Promise<number> {
  if (fromEvent <= 1) return 1;
  // Invariant: the first message at or after `lo` starts below `fromEvent`, or lo = 1; nothing at or after `hi` does.
  let lo = 1;
  let hi = lastStreamSequence + 1;
  let found: StoredFrame | undefined;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const frame = await nextFrame(access, mid);
    if (frame !== null && frame.first < fromEvent) {
      lo = frame.streamSequence; // no message of the subject between mid and it
      found = frame;
    } else {
      hi = mid;
    }
  }
  if (found === undefined) return 1;
  return found.part > 1 ? (found.batchStart as number) : found.streamSequence;
}

/**
 * Yields the shard's messages from stream sequence `start` through `end`, in order, with an ordered consumer (an
 * ephemeral consumer the server removes when it is stopped or idle). Internal.
 */
export async function* framesBetween(
  access: StreamAccess,
  range: { readonly start: number; readonly end: number },
): AsyncGenerator<StoredFrame> {
  const { js, settings } = access;
  if (range.start > range.end) return;
  let messages: ConsumerMessages;
  try {
    const consumer = await js.consumers.get(settings.stream, {
      filter_subjects: settings.subject,
      opt_start_seq: range.start,
    });
    messages = await consumer.consume({ max_messages: settings.readBatchMessages });
  } catch (error) {
    throw unavailableError(error, settings.stream, "read");
  }
  const idle = new IdleWatch(access, range, () => messages.stop());
  try {
    const iterator = messages[Symbol.asyncIterator]();
    for (;;) {
      idle.waiting = true;
      const next = await iterator.next().catch((error: unknown) => {
        idle.throwIfGone(); // a consumer stopped because its messages are gone may end in an error of its own
        throw error;
      });
      idle.waiting = false;
      idle.seen++;
      idle.throwIfGone();
      if (next.done) return;
      const message = next.value;
      if (message.seq > range.end) return;
      yield readFrame({ seq: message.seq, data: message.data, header: message.headers }, settings.subject);
      if (message.seq >= range.end) return;
      idle.from = message.seq + 1;
    }
  } finally {
    idle.stop();
    messages.stop();
  }
}

/**
 * Ends a read whose messages were removed under it. An ordered consumer waits for ever for messages that are gone
 * (the stream purged, trimmed or deleted while it read): when the read has waited for its next message through a
 * whole `appendTimeoutMs` tick, the subject is looked up from the next sequence; nothing there up to `end` stops the
 * consumer and makes the read throw, a message there means the consumer is only slow and the wait goes on. One timer
 * per read, not one per message: a message costs the read a counter increment.
 */
class IdleWatch {
  /** The read is waiting for its next message (not for its own caller to take the last one). */
  waiting = false;
  /** Messages received; a tick that sees the same count as the last one found the read idle. */
  seen = 0;
  /** The stream sequence of the next message the read expects. */
  from: number;
  private readonly end: number;
  private lastSeen = -1;
  private checking = false;
  private gone: unknown;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly access: StreamAccess,
    range: { readonly start: number; readonly end: number },
    private readonly stopConsumer: () => void,
  ) {
    this.from = range.start;
    this.end = range.end;
    this.timer = setInterval(() => this.tick(), access.settings.appendTimeoutMs);
  }

  /**
   * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` (removed while read); unavailable
   *   `resourcelease.jetstream.unavailable` (the stream is gone).
   */
  throwIfGone(): void {
    if (this.gone !== undefined) throw this.gone;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const idle = this.waiting && this.seen === this.lastSeen;
    this.lastSeen = this.seen;
    if (!idle || this.checking || this.gone !== undefined) return;
    this.checking = true;
    const seen = this.seen;
    nextMessage(this.access, this.from).then(
      (message) => {
        this.checking = false;
        if (this.seen !== seen || (message !== null && message.seq <= this.end)) return;
        const reason = `the subject's messages from here to stream sequence ${this.end} were removed while they were read (the stream was purged or trimmed).`;
        this.fail(corruptError(this.access.settings.subject, this.from, reason));
      },
      (error: unknown) => this.fail(error),
    );
  }

  private fail(error: unknown): void {
    this.checking = false;
    if (this.gone !== undefined) return;
    this.gone = error;
    this.stopConsumer();
  }
}

/**
 * The shard's events with `sequenceNumber >= from`, at most `limit`: what the subject holds when the read starts (a
 * batch whose parts stop before its last one and owner-epoch markers are skipped). Internal.
 * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` at a message that does not decode or does not
 *   continue the events before it; unavailable `resourcelease.jetstream.unavailable`.
 */
export async function* readEvents(
  access: StreamAccess,
  from: number,
  limit: number,
): AsyncGenerator<ResourceLeaseReplicationEvent> {
  if (limit === 0) return;
  const subject = access.settings.subject;
  const tail = await lastFrame(access);
  if (tail === null || tail.last < from) return;
  const start = await locateStart(access, from, tail.streamSequence);
  const assembler = new FrameAssembler(subject);
  let next: number | undefined;
  let left = limit;
  for await (const frame of framesBetween(access, { start, end: tail.streamSequence })) {
    const events = assembler.push(frame);
    if (events === undefined) continue;
    if (next !== undefined && frame.first !== next) {
      throw corruptError(subject, frame.streamSequence, `its first event is ${frame.first}, not ${next}.`);
    }
    next = frame.last + 1;
    for (const event of events) {
      if (event.sequenceNumber < from) continue;
      yield event;
      if (--left <= 0) return;
    }
  }
}

/**
 * Removes the shard's messages that hold only events before `fromEvent`: every message of its subject before the
 * first part of the batch holding `fromEvent` (owner-epoch markers among them too). Other shards' subjects are not
 * touched. Returns how many messages were removed. Internal.
 * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
 */
export async function purgeBefore(
  access: StreamAccess,
  fromEvent: number,
  lastStreamSequence: number,
): Promise<number> {
  const start = await locateStart(access, fromEvent, lastStreamSequence);
  if (start <= 1) return 0;
  try {
    const done = await access.jsm.streams.purge(access.settings.stream, {
      filter: access.settings.subject,
      seq: start,
    });
    return done.purged;
  } catch (error) {
    throw unavailableError(error, access.settings.stream, "trim");
  }
}

/** Sequence number of the first event the shard's subject still holds, or `null` when it holds none. Internal. */
export async function firstEvent(access: StreamAccess): Promise<number | null> {
  let from = 1;
  for (;;) {
    const frame = await nextFrame(access, from);
    if (frame === null) return null;
    // A part after the first of a trimmed-into batch, or an owner-epoch marker, holds no event of its own to count.
    if (frame.marker === undefined && frame.part === 1) return frame.first;
    from = frame.streamSequence + 1;
  }
}
