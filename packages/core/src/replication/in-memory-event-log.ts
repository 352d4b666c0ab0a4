import type {
  CallOptions,
  ResourceLeaseEventLog,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicator,
} from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { cancelledError } from "./errors.js";
import { checkSequence } from "./sequence.js";

/**
 * An in-memory event log: a replicator whose published events can be read back. A test double, and the reference
 * behaviour for durable logs: sequence numbers must strictly increase (gaps are allowed and kept), a batch is
 * appended all-or-nothing, and `read` returns events in order.
 */
export class InMemoryResourceLeaseEventLog implements ResourceLeaseReplicator, ResourceLeaseEventLog {
  private readonly events: ResourceLeaseReplicationEvent[] = [];

  /**
   * Appends `events`. Nothing is appended when any of them is out of order.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.out_of_order` when a sequence number is not
   *   above the last stored one (or the previous one in the batch); invalid-argument
   *   `resourcelease.replication.event_invalid` for a number below 1; cancelled `resourcelease.cancelled`.
   */
  async publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    checkSequence(events, this.lastStored());
    this.events.push(...events);
  }

  /**
   * Yields stored events with `sequenceNumber >= fromSequence`, in order, at most `limit` of them. Events appended
   * while iterating are included.
   * @throws OmniRelayError invalid-argument `resourcelease.argument.invalid` for a negative or non-integer `limit`.
   */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: "limit must be an integer >= 0.",
        metadata: {
          field: "limit",
        },
      });
    }
    return this.iterate(fromSequence, limit);
  }

  private async *iterate(
    fromSequence: number,
    limit: number | undefined,
  ): AsyncGenerator<ResourceLeaseReplicationEvent> {
    let yielded = 0;
    for (let i = this.indexOf(fromSequence); i < this.events.length; i++) {
      if (limit !== undefined && yielded >= limit) return;
      yield this.events[i] as ResourceLeaseReplicationEvent;
      yielded++;
    }
  }

  /** Sequence number of the last stored event, 0 when empty. */
  async lastSequence(): Promise<number> {
    return this.lastStored();
  }

  /** A copy of every stored event, in order. */
  snapshot(): readonly ResourceLeaseReplicationEvent[] {
    return [...this.events];
  }

  /** Number of stored events. */
  get size(): number {
    return this.events.length;
  }

  private lastStored(): number {
    return this.events.at(-1)?.sequenceNumber ?? 0;
  }

  /** Index of the first event with `sequenceNumber >= sequence` (binary search; the log is sorted). */
  private indexOf(sequence: number): number {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.events[mid] as ResourceLeaseReplicationEvent).sequenceNumber < sequence) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
