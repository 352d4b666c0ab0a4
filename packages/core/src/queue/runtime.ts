import { ResourceLeaseBackpressureController } from "../backpressure/index.js";
import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import { type Logger, silentLogger } from "../contracts/health.js";
import type { ResourceLeaseGrant, ResourceLeaseQueueStats } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import type { MinHeap } from "../util/heap.js";
import { ItemHistory } from "./history.js";
import { type ResolvedQueueSettings, type ResourceLeaseQueueOptions, resolveQueueSettings } from "./options.js";
import { toPendingItem } from "./records.js";
import { fireSchedules, nextScheduleAt } from "./schedule-runner.js";
import { QueueState, type ScheduleEntry } from "./state.js";
import { cancelled, expiredError, QueueTransitions } from "./transitions.js";
import type { LeaseWaiter, PendingDelivery } from "./waiters.js";

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Whether a queue's runtime serves: open, stopped by a failed replication write, or closed. Internal: the queue shows
 * it as its lifecycle `state` (`running` until closed, then `stopped`) plus its `fault`.
 */
export type QueueStatus = "open" | "faulted" | "closed";

/**
 * The machinery under the queue's operations: state, the replicator commit that resolves each call, long-poll
 * waiters, the one timer over lease deadlines, retry backoffs and dead-letter ages, and backpressure. Internal.
 */
export class QueueRuntime {
  readonly settings: ResolvedQueueSettings;
  readonly state: QueueState;
  readonly tx: QueueTransitions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly gate: ResourceLeaseBackpressureController | undefined;
  readonly gateMode: "reject" | "wait";
  status: QueueStatus = "open";
  replaying = false;
  private readonly replicator: ResourceLeaseReplicator | undefined;
  /** The failed replication write that faulted the queue, if one did. */
  fault: OmniRelayError | undefined;
  private deliveries: PendingDelivery[] = [];
  private readonly waiters = new Set<LeaseWaiter>();
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for bad options. */
  constructor(options: ResourceLeaseQueueOptions) {
    this.settings = resolveQueueSettings(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.replicator = options.replicator;
    const { historyMaxItems: maxItems, historyMaxEntries: maxEntries } = this.settings;
    const history = maxItems > 0 ? new ItemHistory({ maxItems, maxEntries }) : undefined;
    const idempotency = {
      windowMs: this.settings.idempotencyWindowMs,
      maxEntries: this.settings.idempotencyMaxEntries,
    };
    this.state = new QueueState(this.settings.dispatch, idempotency, history);
    this.tx = new QueueTransitions({
      state: this.state,
      settings: this.settings,
      observers: options.observers ?? [],
      logger: this.logger,
    });
    this.gateMode = options.backpressure?.mode ?? "reject";
    const bp = options.backpressure;
    this.gate = bp
      ? new ResourceLeaseBackpressureController({
          highWatermark: bp.highWatermark,
          ...(bp.lowWatermark !== undefined ? { lowWatermark: bp.lowWatermark } : {}),
          ...(bp.cooldownMs !== undefined ? { cooldownMs: bp.cooldownMs } : {}),
          listeners: [...(bp.listeners ?? [])],
          pendingCount: () => this.state.queuedCount,
          clock: this.clock,
          logger: this.logger,
        })
      : undefined;
  }

  /** Queue counters. */
  stats(): ResourceLeaseQueueStats {
    const s = this.state;
    return {
      pendingCount: s.queuedCount,
      delayedCount: s.delayedCount,
      activeLeaseCount: s.leases.size,
      deadLetterCount: s.dead.size,
      state: this.status === "open" ? s.mode : this.status,
      lastEventSequence: s.lastEventSequence,
      lastFencingToken: s.lastFencingToken,
      capacity: this.settings.capacity,
      bytesHeld: s.bytesHeld,
      maxBytes: this.settings.maxBytes,
      deadLetterBytes: s.deadBytes,
    };
  }

  ensureOpen(): void {
    if (this.status === "closed")
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.resourceLease.queueClosed,
        message: "The queue is closed.",
      });
    if (this.status === "faulted") {
      const fault = this.fault;
      if (fault !== undefined && fault.code !== ErrorCodes.replication.failed) {
        // Stopped from outside (stopServing): every call gets that error.
        const { status, code, message, metadata } = fault;
        throw new OmniRelayError({ status, code, message, metadata, cause: fault });
      }
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.replication.failed,
        message: "A replication write failed; the queue must be rebuilt from its log.",
        cause: this.fault,
      });
    }
  }

  /**
   * Throws the error the queue was stopped with from outside ({@link stopServing}: another node owns the shard now),
   * so the read-only verbs answer it too and a client moves to the owner instead of reading stale counts. A queue
   * faulted by a failed replication write, or closed, still reports its state.
   */
  ensureNotStopped(): void {
    if (this.status === "faulted" && this.fault !== undefined && this.fault.code !== ErrorCodes.replication.failed) {
      this.ensureOpen();
    }
  }

  ensureAccepting(): void {
    if (this.state.mode === "draining") {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.resourceLease.draining,
        message: "The queue is draining; call restore to resume.",
      });
    }
  }

  /**
   * Refuses `count` more items of `bytes` payload bytes when they would pass the capacity or the byte budget.
   * @throws OmniRelayError resource-exhausted `resourcelease.queue.full`.
   */
  ensureRoom(count: number, bytes: number): void {
    const { capacity, maxBytes } = this.settings;
    if (this.state.queuedCount + count > capacity) {
      throw new OmniRelayError({
        status: "resource-exhausted",
        code: ErrorCodes.resourceLease.queueFull,
        message: `The queue is full (capacity ${capacity}).`,
        metadata: {
          capacity: String(capacity),
        },
      });
    }
    if (bytes > 0 && this.state.bytesHeld + bytes > maxBytes) {
      throw new OmniRelayError({
        status: "resource-exhausted",
        code: ErrorCodes.resourceLease.queueFull,
        message: `The queue's items would pass its byte budget (${maxBytes}).`,
        metadata: { limit: "bytes", maxBytes: String(maxBytes) },
      });
    }
  }

  /** Waits up to `waitMs` for grants (a long poll); resolves with none when the time is up. */
  waitForGrants(
    options: {
      peerId: string | undefined;
      principal: string | undefined;
      maxItems: number;
      signal?: AbortSignal;
      onGranted?: (count: number) => void;
    },
    waitMs: number,
  ): Promise<ResourceLeaseGrant[]> {
    if (options.signal?.aborted) return Promise.reject(cancelled());
    return new Promise<ResourceLeaseGrant[]>((resolve, reject) => {
      const waiter: LeaseWaiter = {
        peerId: options.peerId,
        principal: options.principal,
        maxItems: options.maxItems,
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
        onGranted: options.onGranted,
      };
      waiter.timer = this.clock.setTimeout(() => {
        this.dropWaiter(waiter);
        resolve([]);
      }, waitMs);
      if (options.signal) {
        waiter.onAbort = () => {
          this.dropWaiter(waiter);
          reject(cancelled());
        };
        options.signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.waiters.add(waiter);
      this.armTimer(); // a key blocked by its rate wakes this waiter when its window ends
    });
  }

  /** Answers every waiting long poll now, with no grants (the caller polls again, elsewhere if this node is going). */
  endWaits(): void {
    this.settleWaiters((w) => w.resolve([]));
  }

  /** Rejects every waiting long poll with `error`. */
  rejectWaiters(error: OmniRelayError): void {
    this.settleWaiters((w) => w.reject(error));
  }

  private settleWaiters(settle: (waiter: LeaseWaiter) => void): void {
    for (const w of [...this.waiters]) {
      this.dropWaiter(w);
      settle(w);
    }
  }

  /** After a mutation: hand items to waiters, update backpressure, arm the timer, publish. */
  finish(): Promise<void> {
    if (this.replaying) return RESOLVED;
    if (this.waiters.size > 0 && this.status === "open" && this.state.mode === "running") this.serveWaiters();
    this.gate?.observe(this.state.queuedCount);
    this.armTimer();
    return this.commit();
  }

  /** Stops timers and rejects waiting lease calls with `resourcelease.queue.closed`. */
  close(): void {
    if (this.status === "closed") return;
    this.status = "closed";
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.rejectWaiters(
      new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.resourceLease.queueClosed,
        message: "The queue is closed.",
      }),
    );
    this.gate?.close();
  }

  private serveWaiters(): void {
    const now = this.clock.now();
    for (const waiter of this.waiters) {
      if (!this.state.pending.peekLeaseable(now)) break;
      this.dropWaiter(waiter);
      const grants = this.tx.grant(waiter.maxItems, waiter, now);
      this.deliveries.push({ waiter, grants });
      waiter.onGranted?.(grants.length);
    }
  }

  private dropWaiter(waiter: LeaseWaiter): void {
    this.waiters.delete(waiter);
    if (waiter.timer) this.clock.clearTimeout(waiter.timer);
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener("abort", waiter.onAbort);
  }

  private commit(): Promise<void> {
    const events = this.tx.outbox;
    const deliveries = this.deliveries;
    if (events.length === 0 && deliveries.length === 0) return RESOLVED;
    this.tx.outbox = [];
    this.deliveries = [];
    if (!this.replicator || events.length === 0) {
      for (const d of deliveries) d.waiter.resolve(d.grants);
      return RESOLVED;
    }
    return this.replicator.publish(events).then(
      () => {
        for (const d of deliveries) d.waiter.resolve(d.grants);
      },
      (cause: unknown) => {
        const error = this.onFault(cause, events);
        for (const d of deliveries) d.waiter.reject(error);
        throw error;
      },
    );
  }

  /**
   * Stops serving with `error`: the queue is faulted with it (timer stopped, waiters rejected). On a queue already
   * stopped this way the new error replaces the old (an ownership guard learns the new owner later); no effect on
   * one faulted by a replication failure or closed.
   */
  stopServing(error: OmniRelayError): void {
    if (this.status === "faulted" && this.fault?.code !== ErrorCodes.replication.failed) this.fault = error;
    if (this.status !== "open") return;
    this.status = "faulted";
    this.fault = error;
    this.logger.warn({ code: error.code }, "Queue stopped serving.");
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.rejectWaiters(error);
  }

  private onFault(cause: unknown, events: readonly ResourceLeaseReplicationEvent[]): OmniRelayError {
    if (cause instanceof OmniRelayError && cause.code === ErrorCodes.resourceLease.notOwner) {
      // The replicator says another node owns the shard now: answer that, not a replication failure.
      this.stopServing(cause);
      return cause;
    }
    const error = new OmniRelayError({
      status: "unavailable",
      code: ErrorCodes.replication.failed,
      message: "A replication write failed; the queue must be rebuilt from its log.",
      metadata: { "replication.sequence": String(events[0]?.sequenceNumber ?? 0) },
      cause,
    });
    if (this.status === "open") {
      this.status = "faulted";
      this.fault = error;
      this.logger.error({ err: cause, sequence: events[0]?.sequenceNumber }, "Replication failed; queue faulted.");
      if (this.timer) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.rejectWaiters(error);
    }
    return error;
  }

  private isLive(entry: ScheduleEntry): boolean {
    if (entry.lease) return entry.lease.active && entry.lease.expiresAt === entry.at;
    const item = entry.item!;
    return item.state === "delayed" && item.availableAt === entry.at;
  }

  /** The earliest live entry of a timed heap (stale ones are dropped on the way; many stale ones at once compacted). */
  private liveTop(heap: MinHeap<ScheduleEntry>, live: number): ScheduleEntry | undefined {
    if (heap.size > 2 * live + 1024) heap.retain((e) => this.isLive(e));
    let top = heap.peek();
    while (top && !this.isLive(top)) {
      heap.pop();
      top = heap.peek();
    }
    return top;
  }

  private armTimer(): void {
    if (this.status !== "open") return;
    const lease = this.liveTop(this.state.schedule, this.state.leases.size);
    const item = this.liveTop(this.state.delayed, this.state.delayedCount);
    const unblock = this.waiters.size > 0 ? this.state.pending.nextUnblock() : undefined;
    const at = Math.min(
      lease?.at ?? Number.POSITIVE_INFINITY,
      item?.at ?? Number.POSITIVE_INFINITY,
      this.tx.nextDeadLetterExpiry() ?? Number.POSITIVE_INFINITY,
      unblock ?? Number.POSITIVE_INFINITY,
      // A draining queue fires no slots: after the restore, the backfill policies decide about the missed ones.
      (this.state.mode === "running" ? nextScheduleAt(this) : undefined) ?? Number.POSITIVE_INFINITY,
    );
    if (at === Number.POSITIVE_INFINITY || at >= this.timerAt) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, at - this.clock.now()));
  }

  /**
   * Acts on every timed entry due at `now`: expired leases end, delayed items (a retry backoff or a `notBefore`) become
   * pending with a Requeued event. The timer calls it, and so does every lease call first, so an item is leasable at its
   * due millisecond even when the timer runs late. Only due entries are touched: O(due · log n).
   */
  runDue(now: number): void {
    const { schedule, delayed } = this.state;
    for (;;) {
      // The two heaps in due order (a lease deadline first on a tie).
      const a = schedule.peek();
      const b = delayed.peek();
      const heap = a && a.at <= now && (!b || a.at <= b.at) ? schedule : b && b.at <= now ? delayed : undefined;
      if (!heap) return;
      const top = heap.pop()!;
      if (!this.isLive(top)) continue;
      if (top.lease) this.tx.endLease(top.lease, { eventType: "LeaseExpired", now, error: expiredError });
      else this.tx.emit("Requeued", { item: toPendingItem(top.item!) }, { now });
    }
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.status !== "open") return;
    const now = this.clock.now();
    this.runDue(now);
    this.tx.purgeDeadLetters(now);
    fireSchedules(this, now);
    this.finish().catch(() => {
      // The fault is recorded in onFault; nobody awaits a timer's commit.
    });
  }
}
