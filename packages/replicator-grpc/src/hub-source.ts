import {
  type Clock,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicationSink,
} from "@omnirelay/core";
import { GrpcReplicationErrorCodes } from "./codes.js";
import type { ReplicationEvent } from "./gen/omnirelay/replication/v1/hub.js";
import { type ReplicationSourceId, sourceKey } from "./source.js";
import type { ReplicationHubLog } from "./store.js";
import { fromWireEvent } from "./wire.js";

/** What the hub reports about one source (health endpoint, metrics, `ListSources`). */
export interface ReplicationHubSourceStatus extends ReplicationSourceId {
  /** Last sequence number stored and acknowledged: the source's checkpoint at the hub. */
  readonly lastSequence: number;
  /** Highest sequence number the source said it has produced (0 until it connects). */
  readonly headSequence: number;
  /** `headSequence - lastSequence`, never below 0: events the source has and the hub does not yet. */
  readonly lag: number;
  /** True while a publish stream of this source is open. */
  readonly connected: boolean;
  /** Events stored since the hub started. */
  readonly storedEvents: number;
  /** Re-sent events (already stored) acknowledged without storing them again, since the hub started. */
  readonly duplicateEvents: number;
  /** Sink deliveries that failed since the hub started. */
  readonly sinkFailures: number;
  /** When the last batch was stored, ms since the epoch (0 = not since the hub started). */
  readonly lastAppendAt: number;
}

/** The active publish stream of a source, so a newer stream can replace it. Internal. */
export interface SourceWriter {
  supersede(): void;
}

/**
 * One source at the hub: its log, its checkpoint, and a lock so appends from any stream are applied one at a time in
 * sequence order. Internal.
 */
export class HubSource {
  readonly id: ReplicationSourceId;
  readonly key: string;
  private last: number;
  private head = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private waiters = new Set<() => void>();
  private writer: SourceWriter | undefined;
  private stored = 0;
  private duplicates = 0;
  private sinkFailures = 0;
  private lastAppendAt = 0;

  private constructor(
    id: ReplicationSourceId,
    readonly log: ReplicationHubLog,
    last: number,
    private readonly deps: { sinks: readonly ResourceLeaseReplicationSink[]; clock: Clock; logger: Logger },
  ) {
    this.id = id;
    this.key = sourceKey(id);
    this.last = last;
    this.head = last;
  }

  /** Opens the source's log and reads its checkpoint. */
  static async open(
    id: ReplicationSourceId,
    log: ReplicationHubLog,
    deps: { sinks: readonly ResourceLeaseReplicationSink[]; clock: Clock; logger: Logger },
  ): Promise<HubSource> {
    return new HubSource(id, log, await log.lastSequence(), deps);
  }

  /** The acknowledged (durable) sequence. */
  get lastSequence(): number {
    return this.last;
  }

  /** Records the source's own head (from a hello or batch). */
  noteHead(head: number): void {
    if (Number.isSafeInteger(head) && head > this.head) this.head = head;
  }

  /** Makes `writer` the source's publish stream, superseding the previous one. */
  attach(writer: SourceWriter): void {
    const previous = this.writer;
    this.writer = writer;
    if (previous && previous !== writer) previous.supersede();
  }

  /** Forgets `writer` if it is still the active stream. */
  detach(writer: SourceWriter): void {
    if (this.writer === writer) this.writer = undefined;
  }

  /**
   * Stores the part of `events` after the checkpoint and resolves with the new checkpoint. Events at or below the
   * checkpoint are re-sends: they are acknowledged, not stored twice.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.grpc.gap` when the first new event does not
   *   follow the checkpoint; invalid-argument for an undecodable or non-contiguous batch; whatever the log throws.
   */
  append(events: readonly ReplicationEvent[]): Promise<number> {
    const run = this.chain.then(() => this.appendNow(events));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async appendNow(events: readonly ReplicationEvent[]): Promise<number> {
    const fresh = events.filter((e) => e.sequenceNumber > this.last);
    this.duplicates += events.length - fresh.length;
    if (fresh.length === 0) return this.last;
    let expected = this.last + 1;
    const decoded: ResourceLeaseReplicationEvent[] = [];
    for (const wire of fresh) {
      if (wire.sequenceNumber !== expected) {
        throw new OmniRelayError({
          status: "failed-precondition",
          code: GrpcReplicationErrorCodes.gap,
          message: `Event ${wire.sequenceNumber} of ${this.key} does not follow ${expected - 1}; resend from ${this.last + 1}.`,
          metadata: { "replication.acked": String(this.last), "replication.sequence": String(wire.sequenceNumber) },
        });
      }
      decoded.push(fromWireEvent(wire));
      expected++;
    }
    await this.log.publish(decoded);
    this.last = expected - 1;
    this.noteHead(this.last);
    this.stored += decoded.length;
    this.lastAppendAt = this.deps.clock.now();
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
    await this.fanOut(decoded);
    return this.last;
  }

  private async fanOut(events: readonly ResourceLeaseReplicationEvent[]): Promise<void> {
    for (const sink of this.deps.sinks) {
      for (const event of events) {
        try {
          await sink.apply({ ...event, metadata: { ...event.metadata, "replication.source": this.key } });
        } catch (error) {
          this.sinkFailures++;
          this.deps.logger.warn(
            {
              source: this.key,
              sequence: event.sequenceNumber,
              error: error instanceof Error ? error.message : String(error),
            },
            "replication hub sink failed",
          );
        }
      }
    }
  }

  /** Resolves after the next stored batch, or when `signal` aborts. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const wake = () => {
        signal.removeEventListener("abort", wake);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }

  /** A status snapshot. */
  status(): ReplicationHubSourceStatus {
    return {
      nodeId: this.id.nodeId,
      shard: this.id.shard,
      lastSequence: this.last,
      headSequence: this.head,
      lag: Math.max(0, this.head - this.last),
      connected: this.writer !== undefined,
      storedEvents: this.stored,
      duplicateEvents: this.duplicates,
      sinkFailures: this.sinkFailures,
      lastAppendAt: this.lastAppendAt,
    };
  }
}
