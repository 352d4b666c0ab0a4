import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/**
 * Checks that `events` carry valid, strictly increasing sequence numbers, all greater than `last`, and returns the
 * highest one (or `last` for an empty batch). Nothing is renumbered: a violation means the producer is broken.
 * Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid` for a non-positive or
 *   non-integer number; failed-precondition `resourcelease.replication.out_of_order` for one not above the last.
 */
export function checkSequence(events: readonly ResourceLeaseReplicationEvent[], last: number): number {
  let previous = last;
  for (const event of events) {
    const seq = event.sequenceNumber;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.replication.eventInvalid,
        message: `Event sequenceNumber must be an integer >= 1, got ${String(seq)}.`,
        metadata: { field: "sequenceNumber", "replication.sequence": String(seq) },
      });
    }
    if (seq <= previous) {
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.replication.outOfOrder,
        message: `Event ${seq} is not after event ${previous}; sequence numbers must strictly increase.`,
        metadata: { "replication.sequence": String(seq), "replication.last": String(previous) },
      });
    }
    previous = seq;
  }
  return previous;
}
