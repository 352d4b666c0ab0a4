import { ErrorCodes, isOmniRelayError, OmniRelayError } from "@omnirelay/core";

/**
 * The error codes of `@omnirelay/replicator-jetstream`: core's `ErrorCodes.jetstream` group (prefix
 * `resourcelease.jetstream.`), each entry documented there and listed in the README.
 */
export const JetStreamErrorCodes = ErrorCodes.jetstream;

/** The error of a publish or read on a closed log. Internal. */
export function closedError(): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: JetStreamErrorCodes.closed,
    message: "The JetStream event log is closed.",
  });
}

/** The error of a publish after an earlier append failed or was refused: same status and code. Internal. */
export function faultedError(fault: OmniRelayError, sequence: number | undefined): OmniRelayError {
  return new OmniRelayError({
    status: fault.status,
    code: fault.code,
    message: `An earlier append failed (${fault.message}); the log refuses every publish until it is reopened.`,
    metadata: { ...fault.metadata, ...(sequence === undefined ? {} : { "replication.sequence": String(sequence) }) },
    cause: fault,
  });
}

/**
 * failed-precondition `sequence_gap`: a published event is not numbered `expected` (the last one + 1), or `expected`
 * is past the safe-integer range, where the log can number no further event exactly. Internal.
 */
export function sequenceGapError(sequence: unknown, expected: number): OmniRelayError {
  const exhausted = !Number.isSafeInteger(expected);
  return new OmniRelayError({
    status: "failed-precondition",
    code: JetStreamErrorCodes.sequenceGap,
    message: exhausted
      ? `The log ends at event ${expected - 1}, the largest safe integer: it cannot number event ${String(sequence)} exactly.`
      : `Event ${String(sequence)} does not follow ${expected - 1}; the log accepts exactly the next sequence number.`,
    metadata: { "replication.sequence": String(sequence), "replication.expected": String(expected) },
  });
}

/** The JetStream API error code of "wrong last sequence" (`Nats-Expected-Last-Subject-Sequence` not met). */
const WRONG_LAST_SEQUENCE = 10071;

/** Where an append failed: the shard's subject, what it expected, and the first event of the message. Internal. */
export interface AppendContext {
  readonly subject: string;
  readonly expectedLastSubjectSequence: number;
  readonly firstEvent: number;
}

/** Turns a failed `js.publish` into `append_refused` (stale writer) or `append_failed` (outcome unknown). Internal. */
export function appendError(cause: unknown, context: AppendContext): OmniRelayError {
  const metadata = {
    "jetstream.subject": context.subject,
    "jetstream.expected_last_subject_sequence": String(context.expectedLastSubjectSequence),
    "replication.sequence": String(context.firstEvent),
  };
  const message = cause instanceof Error ? cause.message : String(cause);
  if (apiErrorCode(cause) === WRONG_LAST_SEQUENCE) {
    return new OmniRelayError({
      status: "failed-precondition",
      code: JetStreamErrorCodes.appendRefused,
      message: `JetStream refused the append to ${context.subject}: another writer appended to this shard (${message}).`,
      metadata,
      cause,
    });
  }
  return new OmniRelayError({
    status: "unavailable",
    code: JetStreamErrorCodes.appendFailed,
    message: `The append to ${context.subject} was not acknowledged: ${message}`,
    metadata,
    cause,
  });
}

/** The JetStream API error code (`err_code`) of an error the client threw, if it has one. */
function apiErrorCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** A stored message that cannot be what this log wrote. Internal. */
export function corruptError(subject: string, streamSequence: number, reason: string): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: JetStreamErrorCodes.corrupt,
    message: `The message at stream sequence ${streamSequence} of ${subject} is damaged: ${reason}`,
    metadata: { "jetstream.subject": subject, "jetstream.stream_sequence": String(streamSequence), reason },
  });
}

/** Wraps a failure to reach, create or read the stream; an `OmniRelayError` passes through. Internal. */
export function unavailableError(cause: unknown, stream: string, what: string): OmniRelayError {
  if (isOmniRelayError(cause)) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new OmniRelayError({
    status: "unavailable",
    code: JetStreamErrorCodes.unavailable,
    message: `Could not ${what} JetStream stream ${stream}: ${message}`,
    metadata: { "jetstream.stream": stream },
    cause,
  });
}

/** Who owns a shard, as its ownership key says. Internal. */
export interface OwnerInfo {
  readonly owner: string;
  readonly url: string;
  readonly epoch: number;
}

/**
 * failed-precondition `resourcelease.not_owner`: this node does not own `shard` (any more); metadata `owner` and
 * `ownerUrl` name the current owner (empty when nobody holds it or it is not known), `shard` and `epoch`. Internal.
 */
export function notOwnerError(shard: string, current: OwnerInfo | undefined, cause?: unknown): OmniRelayError {
  const owner = current?.owner ?? "";
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.notOwner,
    message:
      owner === ""
        ? `This node does not own shard ${shard}; its owner is not known yet.`
        : `This node does not own shard ${shard}; node ${owner} (${current?.url}) does.`,
    metadata: {
      shard,
      owner,
      ownerUrl: current?.url ?? "",
      ...(current ? { epoch: String(current.epoch) } : {}),
    },
    ...(cause === undefined ? {} : { cause }),
  });
}
