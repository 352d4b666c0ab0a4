import type { StoredMsg } from "@nats-io/jetstream";
import { corruptError } from "./errors.js";
import { FrameAssembler, readFrame, type StoredFrame } from "./frames.js";
import { lastFrame, nextMessage, type StreamAccess } from "./stream.js";

/** Where the shard's log ends, as {@link recoverTail} found it. Internal. */
export interface RecoveredTail {
  /** Sequence number of the last event of the log (0 when it holds none). */
  readonly lastEvent: number;
  /** Stream sequence of the subject's last message (0 when it has none): what the next append expects. */
  readonly lastSubjectSequence: number;
}

/**
 * Finds where the shard's log ends from the subject's last message, after checking that this message is one the
 * log's writers can have left there: a batch whose body holds the events its headers announce, numbered on from what
 * the message before it ends at (a batch cut short between its parts takes no numbers; the batch after it reuses
 * them); a part of a batch whose earlier parts are the messages right before it; or an owner-epoch marker placed
 * after the events before it. Appends are fenced by the subject's last sequence and a resend is de-duplicated by its
 * message id, so nothing else can be stored there by a writer of this log: anything else (a copy of an earlier
 * message published at the tail, for instance) would make the next append number over events the subject holds.
 * When no message precedes the checked one (the subject was trimmed, or holds that one only), only the body is
 * checked. Costs a few direct gets: about 2·log2(distance to the message before, in stream sequences), plus one get
 * per part of a batch stored in parts. Internal.
 * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt`; unavailable `resourcelease.jetstream.unavailable`.
 */
export async function recoverTail(access: StreamAccess): Promise<RecoveredTail> {
  const tail = await lastFrame(access);
  if (tail === null) return { lastEvent: 0, lastSubjectSequence: 0 };
  const subject = access.settings.subject;
  let head = tail;
  if (tail.marker === undefined && tail.part > 1) {
    const parts = await partsUpTo(access, tail);
    if (parts === null) {
      // The batch's first parts were removed by a stream limit (nothing is left before them): nothing to check.
      return {
        lastEvent: tail.part === tail.parts ? tail.last : tail.first - 1,
        lastSubjectSequence: tail.streamSequence,
      };
    }
    head = parts[0] as StoredFrame;
    if (tail.part === tail.parts) decode(parts, subject);
  } else if (tail.marker === undefined && tail.parts === 1) {
    decode([tail], subject);
  }
  const before = await previousFrame(access, head.streamSequence);
  if (before !== null) checkContinues(before, { frame: head, subject });
  const lastEvent = tail.marker !== undefined || tail.part === tail.parts ? tail.last : tail.first - 1;
  return { lastEvent, lastSubjectSequence: tail.streamSequence };
}

/** The event number the message after `frame` must start at (an owner-epoch marker: the one after its `after`). */
function nextEventAfter(frame: StoredFrame): number {
  if (frame.marker !== undefined || frame.part === frame.parts) return frame.last + 1;
  // A part before a batch's last one, followed by a message that is not its next part: a batch cut short (its
  // publish never resolved), so what follows takes its numbers.
  return frame.first;
}

/** Throws corrupt unless `next.frame` (a marker, or the first part of a batch) numbers on from `before`. */
function checkContinues(before: StoredFrame, next: { readonly frame: StoredFrame; readonly subject: string }): void {
  const expected = nextEventAfter(before);
  const { frame, subject } = next;
  if (frame.first === expected) return;
  const reason =
    frame.marker === undefined
      ? `its first event is ${frame.first}, not ${expected} (the message before it, at stream sequence ${before.streamSequence}, ends at ${expected - 1}).`
      : `its owner-epoch marker follows event ${frame.last}, but the message before it, at stream sequence ${before.streamSequence}, ends at ${expected - 1}.`;
  throw corruptError(subject, frame.streamSequence, reason);
}

/**
 * The parts of `tail`'s batch up to `tail` (part > 1), read from its first part on: they must be the subject's
 * messages right before it, in order. `null` when the batch's first parts are gone and nothing precedes the parts
 * left (a stream limit removed them). At most `tail.part` gets.
 * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` when the parts do not lead up to `tail`.
 */
async function partsUpTo(access: StreamAccess, tail: StoredFrame): Promise<StoredFrame[] | null> {
  const subject = access.settings.subject;
  const broken = () =>
    corruptError(
      subject,
      tail.streamSequence,
      `it is part ${tail.part}/${tail.parts}, but the parts before it are not the messages before it.`,
    );
  const parts: StoredFrame[] = [];
  let from = tail.batchStart as number;
  for (let expected = 1; expected <= tail.part; expected++) {
    const message = await nextMessage(access, from);
    if (message === null || message.seq > tail.streamSequence) throw broken();
    const frame = readFrame(message, subject);
    if (parts.length === 0 && frame.streamSequence !== tail.batchStart) {
      // The first part is gone: legitimate only when a limit removed everything before what is left of the batch.
      if (!samePartOf(frame, tail) || (await previousFrame(access, frame.streamSequence)) !== null) throw broken();
      expected = frame.part;
    } else if (!samePartOf(frame, tail) || frame.part !== expected) {
      throw broken();
    }
    parts.push(frame);
    if (frame.streamSequence === tail.streamSequence) {
      if (frame.part !== tail.part) throw broken();
      return parts[0]?.part === 1 ? parts : null;
    }
    from = frame.streamSequence + 1;
  }
  throw broken();
}

/** Whether `frame` is a part of the same batch as `tail` (same numbers, same number of parts, same first part). */
function samePartOf(frame: StoredFrame, tail: StoredFrame): boolean {
  return (
    frame.marker === undefined &&
    frame.first === tail.first &&
    frame.last === tail.last &&
    frame.parts === tail.parts &&
    (frame.part === 1 ? frame.streamSequence === tail.batchStart : frame.batchStart === tail.batchStart)
  );
}

/** Decodes a complete batch (its parts in order): throws corrupt unless its body holds the events its headers say. */
function decode(parts: readonly StoredFrame[], subject: string): void {
  const assembler = new FrameAssembler(subject);
  let events: unknown[] | undefined;
  for (const part of parts) events = assembler.push(part);
  if (events === undefined) {
    throw corruptError(subject, (parts.at(-1) as StoredFrame).streamSequence, "its parts do not make a whole batch.");
  }
}

/**
 * The subject's last message at a stream sequence before `before`, or `null`: probes backwards at distances 1, 2,
 * 4, … with `next_by_subj` gets until one lands before `before`, then bisects between that probe and the previous
 * one. About 2·log2(distance) gets; one when the messages are next to each other. Internal.
 * @throws OmniRelayError data-loss `resourcelease.jetstream.corrupt` when that message is not a log message.
 */
export async function previousFrame(access: StreamAccess, before: number): Promise<StoredFrame | null> {
  // Invariant: the subject has no message at a stream sequence in [hi, before).
  let hi = before;
  let found: StoredMsg | null = null;
  for (let step = 1; found === null; step *= 2) {
    if (hi <= 1) return null;
    const probe = Math.max(1, before - step);
    const message = await nextMessage(access, probe);
    if (message !== null && message.seq < before) found = message;
    else hi = probe;
  }
  let lo = found.seq;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const message = await nextMessage(access, mid);
    if (message !== null && message.seq < before) {
      found = message;
      lo = message.seq;
    } else {
      hi = mid;
    }
  }
  return readFrame(found, access.settings.subject);
}
