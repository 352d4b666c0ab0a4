import type {
  CallOptions,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicationSink,
  ResourceLeaseReplicator,
} from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { invoke, replicationFailure } from "./errors.js";
import { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";

/** Options of {@link DurableFanOutResourceLeaseReplicator}. */
export interface DurableFanOutResourceLeaseReplicatorOptions {
  /** The durable log (e.g. SQLite). Sinks see an event only after this resolved for it. */
  readonly primary: ResourceLeaseReplicator;
  /**
   * Sinks a publish waits for: a slow required sink slows the queue down (backpressure) instead of losing events,
   * and a failing one fails the publish (the queue then faults and is rebuilt from the primary log).
   */
  readonly requiredSinks?: readonly ResourceLeaseReplicationSink[];
  /**
   * Sinks fed in order but not waited for: their failures are logged and counted, never fail the queue. Wrap them in
   * a `CheckpointingResourceLeaseReplicationSink` so a sink can catch up from the log after a failure.
   */
  readonly optionalSinks?: readonly ResourceLeaseReplicationSink[];
  readonly logger?: Logger;
}

/**
 * Commit first, then fan out: events go to the durable primary log, and only once it committed them to the sinks,
 * in order. So no sink ever sees an event that a crash could take back — unlike a composite replicator, whose
 * members run side by side, where a sink can see an event the log never committed and whose number a restarted
 * queue then gives to a different event.
 */
export class DurableFanOutResourceLeaseReplicator implements ResourceLeaseReplicator {
  private readonly primary: ResourceLeaseReplicator;
  private readonly required: InMemoryResourceLeaseReplicator | undefined;
  private readonly optional: InMemoryResourceLeaseReplicator | undefined;
  private readonly logger: Logger;
  private optionalFailuresCount = 0;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` without a primary. */
  constructor(options: DurableFanOutResourceLeaseReplicatorOptions) {
    if (typeof options?.primary?.publish !== "function") {
      throw OmniRelayError.invalidOption("primary", "A primary replicator with publish(events) is required.");
    }
    this.primary = options.primary;
    this.logger = options.logger ?? silentLogger;
    const required = options.requiredSinks ?? [];
    const optional = options.optionalSinks ?? [];
    this.required = required.length > 0 ? new InMemoryResourceLeaseReplicator({ sinks: required }) : undefined;
    this.optional = optional.length > 0 ? new InMemoryResourceLeaseReplicator({ sinks: optional }) : undefined;
  }

  /** How many optional-sink deliveries failed so far. */
  get optionalFailures(): number {
    return this.optionalFailuresCount;
  }

  /**
   * Publishes to the primary, then to the sinks. Resolves when the primary and every required sink applied the events.
   * @throws OmniRelayError the primary's failure (no sink sees the events), or a required sink's failure with
   *   metadata `replication.stage=fanout.required`.
   */
  async publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void> {
    await this.primary.publish(events, options);
    if (this.optional) {
      this.optional.publish(events).catch((error: unknown) => {
        this.optionalFailuresCount++;
        this.logger.warn({ err: error, sequence: events[0]?.sequenceNumber }, "An optional replication sink failed.");
      });
    }
    if (this.required) {
      try {
        await invoke(() => this.required!.publish(events, options));
      } catch (error) {
        throw replicationFailure(error, { "replication.stage": "fanout.required" });
      }
    }
  }
}
