import { isOmniRelayError, OmniRelayError } from "@omnirelay/core";

/**
 * The error codes of `@omnirelay/replicator-jetstream`, in core's catalog style (prefix `resourcelease.jetstream.`).
 * They live here, not in core's `ErrorCodes`, until core's catalog lists them; the README lists them too.
 */
export const JetStreamErrorCodes = {
  /**
   * failed-precondition: the stream refused an append because the shard's subject does not end where this log
   * expected (`Nats-Expected-Last-Subject-Sequence`): another writer appended to the shard, so this one is stale.
   * Nothing of the refused message was stored. The log is faulted afterwards: every later publish is refused with
   * this code until it is reopened. Metadata `jetstream.subject`, `jetstream.expected_last_subject_sequence`,
   * `replication.sequence` (first event of the refused message).
   */
  appendRefused: "resourcelease.jetstream.append_refused",
  /**
   * unavailable: an append was not acknowledged (timeout, no JetStream responder, connection lost, another API
   * error). Whether it was stored is unknown, so the log is faulted: every later publish is refused with this code
   * until it is reopened, which reads what the stream holds. Metadata `jetstream.subject`, `replication.sequence`.
   */
  appendFailed: "resourcelease.jetstream.append_failed",
  /**
   * failed-precondition: a published event's sequence number is not the last one + 1 (a gap or a repeat); nothing
   * of the batch is sent. Metadata `replication.sequence`, `replication.expected`.
   */
  sequenceGap: "resourcelease.jetstream.sequence_gap",
  /**
   * data-loss: a stored message of the shard does not decode, or its events do not continue the ones before it.
   * Metadata `jetstream.subject`, `jetstream.stream_sequence`, `reason`.
   */
  corrupt: "resourcelease.jetstream.corrupt",
  /** unavailable: the stream could not be reached, created or read (open, read); metadata `jetstream.stream`. */
  unavailable: "resourcelease.jetstream.unavailable",
  /** unavailable: the log was closed. */
  closed: "resourcelease.jetstream.closed",
} as const;

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
