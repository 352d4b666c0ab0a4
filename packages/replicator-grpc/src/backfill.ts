import {
  ErrorCodes,
  OmniRelayError,
  type ResourceLeaseEventLog,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";

/**
 * Reads events `from..to` that the outbox no longer holds from the backfill log (the local log the events were first
 * committed to), stopping at the first hole. Internal.
 * @throws OmniRelayError failed-precondition `resourcelease.replication.grpc.gap` when not even event `from` can be
 *   read (no backfill log, or it does not hold it).
 */
export async function readBackfill(
  log: ResourceLeaseEventLog | undefined,
  from: number,
  to: number,
): Promise<ResourceLeaseReplicationEvent[]> {
  const events: ResourceLeaseReplicationEvent[] = [];
  if (log) {
    for await (const event of log.read(from, to - from + 1)) {
      if (event.sequenceNumber !== from + events.length || event.sequenceNumber > to) break;
      events.push(event);
    }
  }
  if (events.length === 0) {
    throw new OmniRelayError({
      status: "failed-precondition",
      code: ErrorCodes.replicationHub.gap,
      message: `The hub's checkpoint is ${from - 1} but the outbox starts later, and ${
        log ? "the backfill log does not hold" : "no backfill log is configured to read"
      } event ${from}.`,
      metadata: { "replication.acked": String(from - 1), "replication.sequence": String(from) },
    });
  }
  return events;
}

/** The leading run of `batch` that continues the stream right after `after`, cut at the first hole. Internal. */
export function contiguous(
  batch: readonly ResourceLeaseReplicationEvent[],
  after: number,
): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  let expected = after + 1;
  for (const event of batch) {
    if (event.sequenceNumber !== expected) break;
    out.push(event);
    expected++;
  }
  return out;
}
