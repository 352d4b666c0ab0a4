import type { CallOptions, Clock, ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "@omnirelay/core";

/** Where a replication sink stands: the last sequence number it applied and, when known, how far behind it is. */
export interface ReplicationCheckpoint {
  /** Sequence number of the last event the sink applied; 0 before the first. */
  readonly lastSequence: number;
  /** Time from the mutation of the last applied event to its application, ms (0 once caught up). */
  readonly lagMs?: number;
}

/** A sink whose checkpoint the control plane reports at `/omnirelay/control/replication/checkpoint`. */
export interface ReplicationSource {
  /** Name of the sink (a bounded label value: one per configured sink). */
  readonly sink: string;
  /** Shard (queue namespace) whose events the sink applies. */
  readonly shard: string;
  /** Reads the sink's checkpoint; called on every request and readiness check, so keep it cheap. */
  readonly checkpoint: () => ReplicationCheckpoint;
}

/** Options of {@link TrackedReplicationSink}. */
export interface TrackedReplicationSinkOptions {
  /** Sink name used in the endpoint and the `sink` label. */
  readonly sink: string;
  /** Shard (queue namespace) the events come from. */
  readonly shard: string;
  /** The real sink to forward to; without one the tracker only records. @defaultValue `undefined` */
  readonly inner?: ResourceLeaseReplicationSink;
  /** Time source for lag. @defaultValue `systemClock` (given by the control plane) */
  readonly clock: Clock;
  /** Receives every applied event's lag, ms. */
  readonly onLag?: (lagMs: number) => void;
}

/**
 * A replication sink wrapper that records, for each event the inner sink applied, the sequence number and the lag
 * (now − `event.timestamp`). Give it to a replicator as a sink; the control plane reads its {@link checkpoint}.
 */
export class TrackedReplicationSink implements ResourceLeaseReplicationSink {
  /** Sink name. */
  readonly sink: string;
  /** Shard name. */
  readonly shard: string;
  private readonly inner: ResourceLeaseReplicationSink | undefined;
  private readonly clock: Clock;
  private readonly onLag: ((lagMs: number) => void) | undefined;
  private lastSequence = 0;
  private lastLagMs: number | undefined;

  /** Creates a tracker at sequence 0. */
  constructor(options: TrackedReplicationSinkOptions) {
    this.sink = options.sink;
    this.shard = options.shard;
    this.inner = options.inner;
    this.clock = options.clock;
    this.onLag = options.onLag;
  }

  /** Forwards to the inner sink, then records the event as applied. Rejects (without recording) when it rejects. */
  async apply(event: ResourceLeaseReplicationEvent, options?: CallOptions): Promise<void> {
    if (this.inner) await this.inner.apply(event, options);
    const lagMs = Math.max(0, this.clock.now() - event.timestamp);
    if (event.sequenceNumber > this.lastSequence) this.lastSequence = event.sequenceNumber;
    this.lastLagMs = lagMs;
    try {
      this.onLag?.(lagMs);
    } catch {
      // A metrics failure must never fail replication.
    }
  }

  /** The last applied sequence number and the lag measured when it was applied. */
  checkpoint(): ReplicationCheckpoint {
    return this.lastLagMs === undefined
      ? { lastSequence: this.lastSequence }
      : { lastSequence: this.lastSequence, lagMs: this.lastLagMs };
  }
}
