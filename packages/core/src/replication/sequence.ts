import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { omniError } from "../errors/omnirelay-error.js";
import { ReplicationErrorCodes } from "./codes.js";

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
      throw omniError(
        "invalid-argument",
        ReplicationErrorCodes.eventInvalid,
        `Event sequenceNumber must be an integer >= 1, got ${String(seq)}.`,
        { field: "sequenceNumber", "replication.sequence": String(seq) },
      );
    }
    if (seq <= previous) {
      throw omniError(
        "failed-precondition",
        ReplicationErrorCodes.outOfOrder,
        `Event ${seq} is not after event ${previous}; sequence numbers must strictly increase.`,
        { "replication.sequence": String(seq), "replication.last": String(previous) },
      );
    }
    previous = seq;
  }
  return previous;
}
