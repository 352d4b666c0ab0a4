import {
  type Clock,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicationSink,
  type TimerHandle,
} from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import type { ReplicationEvent } from "./gen/omnirelay/replication/v1/hub.js";
import { LogBudget } from "./log-budget.js";
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
  /** Re-sent events (already stored, and equal to the stored ones) acknowledged without storing them again. */
  readonly duplicateEvents: number;
  /** Re-sent events that differed from the stored event at their sequence number: refused, never acknowledged. */
  readonly conflicts: number;
  /** Publish streams refused because the source already had a live one. */
  readonly busyRefusals: number;
  /** Sink deliveries that failed since the hub started. */
  readonly sinkFailures: number;
  /** When the last batch was stored, ms since the epoch (0 = not since the hub started). */
  readonly lastAppendAt: number;
  /**
   * Set when the hub could not open the source's log (a damaged file, for example): the numbers above are then 0,
   * and the source's Publish, Subscribe and Checkpoint calls are answered with this error until the log opens. The
   * hub serves its other sources meanwhile. Absent for an open source.
   */
  readonly failed?: ReplicationHubSourceFailure;
}

/**
 * Why the hub could not open a source's log ({@link ReplicationHubSourceStatus.failed}). Publish, Subscribe and
 * Checkpoint calls for the source are answered with that error until the log opens.
 */
export interface ReplicationHubSourceFailure {
  /** The code the source's calls are answered with: `resourcelease.replication.grpc.store_failed`. */
  readonly code: string;
  /** The code of the underlying error when it is an `OmniRelayError` (e.g. `resourcelease.sqlite.corrupt`). */
  readonly causeCode?: string;
  /** The error's message, which carries the underlying error's. */
  readonly message: string;
  /** When the open first failed, ms since the epoch. */
  readonly since: number;
  /** When the open was last tried (a publish hello retries it), ms since the epoch. */
  readonly lastAttemptAt: number;
}

/** What every source at a hub shares: where its events go, its clock and its logger. Internal. */
export interface HubSourceDeps {
  readonly sinks: readonly ResourceLeaseReplicationSink[];
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A publish stream holding a source: only its identity matters. Internal. */
export type SourceWriter = object;

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
  private readonly released = new Set<() => void>();
  private stored = 0;
  private duplicates = 0;
  private conflicts = 0;
  private busyRefusals = 0;
  private readonly alarmBudget: LogBudget;
  private sinkFailures = 0;
  private lastAppendAt = 0;

  private readonly deps: HubSourceDeps;

  /** `last`: the log's checkpoint when it was opened. */
  private constructor(
    id: ReplicationSourceId,
    readonly log: ReplicationHubLog,
    init: HubSourceDeps & { readonly last: number },
  ) {
    const { last, ...deps } = init;
    this.id = id;
    this.key = sourceKey(id);
    this.last = last;
    this.head = last;
    this.deps = deps;
    this.alarmBudget = new LogBudget(deps.clock);
  }

  /** Opens the source's log and reads its checkpoint. */
  static async open(id: ReplicationSourceId, log: ReplicationHubLog, deps: HubSourceDeps): Promise<HubSource> {
    return new HubSource(id, log, { ...deps, last: await log.lastSequence() });
  }

  /** The acknowledged (durable) sequence. */
  get lastSequence(): number {
    return this.last;
  }

  /** Records the source's own head (from a hello or batch). */
  noteHead(head: number): void {
    if (Number.isSafeInteger(head) && head > this.head) this.head = head;
  }

  /**
   * Makes `writer` the source's one publish stream. While another stream holds the source, waits up to `waitMs` for
   * it to be released (a client that just dropped its stream reconnects faster than the hub hears of the drop).
   * @throws OmniRelayError already-exists `resourcelease.replication.grpc.source_busy` when it is still held;
   *   cancelled when `signal` aborts first.
   */
  async attach(writer: SourceWriter, options: { waitMs: number; signal: AbortSignal }): Promise<void> {
    const deadline = this.deps.clock.now() + options.waitMs;
    while (this.writer !== undefined && this.writer !== writer) {
      const left = deadline - this.deps.clock.now();
      if (options.signal.aborted) throw cancelledAttach();
      if (left <= 0) {
        this.busyRefusals++;
        throw new OmniRelayError({
          status: "already-exists",
          code: ErrorCodes.replicationHub.sourceBusy,
          message:
            `${this.key} already has a live publish stream; a source has one at a time. ` +
            "If that stream is dead, the hub drops it within its keepalive timeout: retry.",
          metadata: { "replication.source": this.key },
        });
      }
      await this.releasedOrTimeout(left, options.signal);
    }
    if (options.signal.aborted) throw cancelledAttach();
    this.writer = writer;
  }

  /** Releases the source if `writer` holds it, letting a waiting stream take it. */
  detach(writer: SourceWriter): void {
    if (this.writer !== writer) return;
    this.writer = undefined;
    const waiting = [...this.released];
    this.released.clear();
    for (const wake of waiting) wake();
  }

  private releasedOrTimeout(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | undefined;
      const wake = () => {
        if (timer !== undefined) this.deps.clock.clearTimeout(timer);
        signal.removeEventListener("abort", wake);
        this.released.delete(wake);
        resolve();
      };
      this.released.add(wake);
      signal.addEventListener("abort", wake, { once: true });
      timer = this.deps.clock.setTimeout(wake, ms);
    });
  }

  /**
   * Stores the part of `events` after the checkpoint and resolves with the new checkpoint. Events at or below the
   * checkpoint are re-sends: acknowledged only when equal to the stored event (canonical JSON), never stored twice.
   * `caller` names the stream's identity in the conflict alarm.
   * @throws OmniRelayError aborted `resourcelease.replication.grpc.conflict` when a re-sent event differs (nothing of
   *   the batch is stored); failed-precondition `resourcelease.replication.grpc.gap` when the first new event does not
   *   follow the checkpoint; invalid-argument for an undecodable or non-contiguous batch; whatever the log throws.
   */
  append(events: readonly ReplicationEvent[], caller = "anonymous"): Promise<number> {
    const run = this.chain.then(() => this.appendNow(events, caller));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async appendNow(events: readonly ReplicationEvent[], caller: string): Promise<number> {
    // Decode everything first: a batch is validated whole, so a bad event later in it stores nothing.
    const decoded = events.map(fromWireEvent);
    for (let i = 1; i < decoded.length; i++) {
      if (decoded[i]!.sequenceNumber !== decoded[i - 1]!.sequenceNumber + 1) {
        throw new OmniRelayError({
          status: "invalid-argument",
          code: ErrorCodes.replicationHub.protocol,
          message: `A batch of ${this.key} must be contiguous: event ${decoded[i]!.sequenceNumber} follows ${decoded[i - 1]!.sequenceNumber}.`,
          metadata: { field: "events", "replication.sequence": String(decoded[i]!.sequenceNumber) },
        });
      }
    }
    const resent = decoded.filter((e) => e.sequenceNumber <= this.last);
    if (resent.length > 0) await this.verifyResent(resent, caller);
    this.duplicates += resent.length;
    const fresh = decoded.slice(resent.length);
    const first = fresh[0];
    if (first === undefined) return this.last;
    if (first.sequenceNumber !== this.last + 1) {
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.replicationHub.gap,
        message: `Event ${first.sequenceNumber} of ${this.key} does not follow ${this.last}; resend from ${this.last + 1}.`,
        metadata: { "replication.acked": String(this.last), "replication.sequence": String(first.sequenceNumber) },
      });
    }
    await this.log.publish(fresh);
    this.last = fresh.at(-1)!.sequenceNumber;
    this.noteHead(this.last);
    this.stored += fresh.length;
    this.lastAppendAt = this.deps.clock.now();
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
    await this.fanOut(fresh);
    return this.last;
  }

  /**
   * Compares re-sent events (a contiguous run at or below the checkpoint) with the stored ones. Acknowledging a
   * re-send unseen is how a second writer's events silently replaced a node's own: an event that differs, or that
   * the log no longer holds to compare with, is a conflict.
   */
  private async verifyResent(resent: readonly ResourceLeaseReplicationEvent[], caller: string): Promise<void> {
    const from = resent[0]!.sequenceNumber;
    const stored = new Map<number, string>();
    for await (const event of this.log.read(from, resent.length)) {
      if (event.sequenceNumber > from + resent.length - 1) break;
      stored.set(event.sequenceNumber, canonicalEvent(event));
    }
    const differing = resent.find((e) => stored.get(e.sequenceNumber) !== canonicalEvent(e));
    if (differing === undefined) return;
    this.conflicts++;
    const held = stored.has(differing.sequenceNumber);
    const budget = this.alarmBudget.take();
    if (budget.log) {
      this.deps.logger.error(
        {
          ...(budget.suppressed > 0 ? { suppressed: budget.suppressed } : {}),
          source: this.key,
          sequence: differing.sequenceNumber,
          acked: this.last,
          caller,
          stored: held,
        },
        "replication hub conflict: a re-sent event differs from the stored one; refused, not acknowledged",
      );
    }
    throw new OmniRelayError({
      status: "aborted",
      code: ErrorCodes.replicationHub.conflict,
      message: held
        ? `Event ${differing.sequenceNumber} of ${this.key} differs from the event the hub stored at that sequence number.`
        : `Event ${differing.sequenceNumber} of ${this.key} cannot be compared: the hub's log no longer holds it.`,
      metadata: {
        "replication.source": this.key,
        "replication.sequence": String(differing.sequenceNumber),
        "replication.acked": String(this.last),
      },
    });
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
      conflicts: this.conflicts,
      busyRefusals: this.busyRefusals,
      sinkFailures: this.sinkFailures,
      lastAppendAt: this.lastAppendAt,
    };
  }
}

function cancelledAttach(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The publish stream ended while it waited for its source.",
  });
}

/** An event as canonical JSON (the core envelope, object keys sorted), so equal events compare equal as text. */
function canonicalEvent(event: ResourceLeaseReplicationEvent): string {
  return JSON.stringify(sortKeys(encodeReplicationEvent(event)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}
