import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { hashReplicationEvent } from "@omnirelay/core/wire";

/**
 * Where the hash chain inside a segment breaks: the index of the first event whose `previousHash` is not the hash of
 * the event before it (`previous`, the last event of the segment read before, for index 0), or -1. A link is checked
 * only between consecutive sequence numbers and when the later event carries `previousHash` (events written before
 * the chain existed carry none). The chain is unkeyed: it catches bit rot and edits of single events, not a forger
 * who rewrites every later link too. Internal.
 */
export function firstBrokenLink(
  events: readonly ResourceLeaseReplicationEvent[],
  previous: ResourceLeaseReplicationEvent | undefined,
): number {
  let before = previous;
  for (const [index, event] of events.entries()) {
    const linked = event.previousHash !== undefined && before?.sequenceNumber === event.sequenceNumber - 1;
    if (linked && hashReplicationEvent(before as ResourceLeaseReplicationEvent) !== event.previousHash) return index;
    before = event;
  }
  return -1;
}
