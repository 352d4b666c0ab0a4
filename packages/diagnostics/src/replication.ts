import type { CallOptions, Clock, ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator } from "@omnirelay/core/deterministic";

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

/** What a {@link TrackedReplicationSink} reports about each apply. */
export interface TrackedReplicationSinkObserver {
  /**
   * The inner sink applied an event. `replay` is true when the event had been applied before: a sequence number at
   * or below the tracker's checkpoint, or an event a `DeterministicResourceLeaseCoordinator` had already recorded
   * (also across restarts, since the coordinator's store remembers). `lagMs` = now − `event.timestamp`.
   */
  applied?(outcome: { readonly lagMs: number; readonly replay: boolean }): void;
  /** The inner sink rejected an event (the rejection is passed on to the caller). */
  failed?(error: unknown): void;
  /** An event that this sink had rejected before is being applied again. */
  retried?(): void;
}

/** Sequence numbers of rejected events remembered to recognise their retries. */
const MAX_REMEMBERED_FAILURES = 1024;

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
  /** Receives every apply's outcome (applied with lag and replay flag, failed, retried). @defaultValue none */
  readonly observer?: TrackedReplicationSinkObserver;
}

/**
 * A replication sink wrapper that records, for each event the inner sink applied, the sequence number and the lag
 * (now − `event.timestamp`), and reports replays, failures and retries to its observer. Give it to a replicator as
 * a sink; the control plane reads its {@link checkpoint}. With a `DeterministicResourceLeaseCoordinator` as inner
 * sink it calls `record` (what `apply` does) to learn whether the event was recorded before.
 */
export class TrackedReplicationSink implements ResourceLeaseReplicationSink {
  /** Sink name. */
  readonly sink: string;
  /** Shard name. */
  readonly shard: string;
  private readonly inner: ResourceLeaseReplicationSink | undefined;
  private readonly clock: Clock;
  private readonly observer: TrackedReplicationSinkObserver | undefined;
  private readonly failedSequences = new Set<number>();
  private lastSequence = 0;
  private lastLagMs: number | undefined;

  /** Creates a tracker at sequence 0. */
  constructor(options: TrackedReplicationSinkOptions) {
    this.sink = options.sink;
    this.shard = options.shard;
    this.inner = options.inner;
    this.clock = options.clock;
    this.observer = options.observer;
  }

  /** Forwards to the inner sink, then records the event as applied. Rejects (without recording) when it rejects. */
  async apply(event: ResourceLeaseReplicationEvent, options?: CallOptions): Promise<void> {
    const seq = event.sequenceNumber;
    if (this.failedSequences.delete(seq)) this.report((o) => o.retried?.());
    let recordedBefore = false;
    try {
      if (this.inner instanceof DeterministicResourceLeaseCoordinator) {
        recordedBefore = !(await this.inner.record(event, options)).recorded;
      } else if (this.inner) {
        await this.inner.apply(event, options);
      }
    } catch (error) {
      this.failedSequences.add(seq);
      if (this.failedSequences.size > MAX_REMEMBERED_FAILURES) {
        this.failedSequences.delete(this.failedSequences.values().next().value as number);
      }
      this.report((o) => o.failed?.(error));
      throw error;
    }
    const replay = recordedBefore || seq <= this.lastSequence;
    const lagMs = Math.max(0, this.clock.now() - event.timestamp);
    if (seq > this.lastSequence) this.lastSequence = seq;
    if (!replay) this.lastLagMs = lagMs;
    this.report((o) => o.applied?.({ lagMs, replay }));
  }

  /** The last applied sequence number and the lag measured when it was applied. */
  checkpoint(): ReplicationCheckpoint {
    return this.lastLagMs === undefined
      ? { lastSequence: this.lastSequence }
      : { lastSequence: this.lastSequence, lagMs: this.lastLagMs };
  }

  private report(call: (observer: TrackedReplicationSinkObserver) => void): void {
    if (!this.observer) return;
    try {
      call(this.observer);
    } catch {
      // A metrics failure must never fail replication.
    }
  }
}
