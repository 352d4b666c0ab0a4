import type {
  CallOptions,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicationSink,
  ResourceLeaseReplicator,
} from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { cancelledError, invoke, replicationFailure } from "./errors.js";
import { checkSequence } from "./sequence.js";

/** Options of {@link InMemoryResourceLeaseReplicator}. */
export interface InMemoryResourceLeaseReplicatorOptions {
  /** Sinks that receive every event, in registration order. @defaultValue `[]` */
  readonly sinks?: readonly ResourceLeaseReplicationSink[];
}

/**
 * Delivers replication events to in-process sinks, in sequence order. Not durable: nothing can be read back.
 *
 * Ordering: publishes are chained, so a later `publish` never starts delivering before every earlier one has
 * finished, even when sinks are async and calls overlap. Each event is applied by all sinks (concurrently) before
 * the next event starts. Sequence numbers are the queue's; they are checked, never reassigned.
 *
 * Failure: when a sink rejects, that `publish` rejects and the rest of its batch is not delivered. The replicator
 * does not wedge: later publishes are delivered normally, so sinks see a gap where the failed events were (the
 * queue turns `faulted` on a failed publish, so in practice nothing follows). Failed events are not retried and
 * cannot be published again, because their numbers were already accepted.
 */
export class InMemoryResourceLeaseReplicator implements ResourceLeaseReplicator {
  private readonly sinks: ResourceLeaseReplicationSink[] = [];
  private tail: Promise<void> = Promise.resolve();
  private lastAccepted = 0;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (option `sinks`) for a sink without `apply`. */
  constructor(options: InMemoryResourceLeaseReplicatorOptions = {}) {
    for (const sink of options.sinks ?? []) {
      if (typeof sink?.apply !== "function")
        throw OmniRelayError.invalidOption("sinks", "Every sink must have an apply(event) method.");
      if (!this.sinks.includes(sink)) this.sinks.push(sink);
    }
  }

  /** Highest sequence number accepted by `publish` so far (0 before the first). */
  get lastSequence(): number {
    return this.lastAccepted;
  }

  /**
   * Adds a sink at runtime; it receives events whose delivery starts after this call.
   * @returns a function that removes the sink again (idempotent).
   * @throws OmniRelayError already-exists `resourcelease.replication.sink_duplicate` when the sink is registered.
   */
  registerSink(sink: ResourceLeaseReplicationSink): () => void {
    if (typeof sink?.apply !== "function")
      throw OmniRelayError.invalidOption("sink", "A sink must have an apply(event) method.");
    if (this.sinks.includes(sink)) {
      throw new OmniRelayError({
        status: "already-exists",
        code: ErrorCodes.replication.sinkDuplicate,
        message: "The sink is already registered.",
      });
    }
    this.sinks.push(sink);
    return () => {
      const index = this.sinks.indexOf(sink);
      if (index >= 0) this.sinks.splice(index, 1);
    };
  }

  /**
   * Delivers `events` to every sink, after all earlier publishes. Resolves when every sink applied every event.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.out_of_order` (synchronously checked, nothing
   *   delivered) when a sequence number is not above the last accepted one; a sink failure with metadata
   *   `replication.stage=inmemory.sink`, `replication.sequence`, `replication.sink` (its index); cancelled
   *   `resourcelease.cancelled` when `signal` aborts before an event's delivery starts.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    try {
      this.lastAccepted = checkSequence(events, this.lastAccepted);
    } catch (error) {
      return Promise.reject(error);
    }
    const batch = [...events];
    const run = this.tail.then(() => this.deliver(batch, options));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async deliver(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions): Promise<void> {
    for (const event of events) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      const sinks = [...this.sinks];
      const results = await Promise.allSettled(sinks.map((sink) => invoke(() => sink.apply(event, options))));
      const failedAt = results.findIndex((r) => r.status === "rejected");
      const failed = results[failedAt];
      if (failed?.status === "rejected") {
        throw replicationFailure(failed.reason, {
          "replication.stage": "inmemory.sink",
          "replication.sequence": String(event.sequenceNumber),
          "replication.sink": String(failedAt),
        });
      }
    }
  }
}
