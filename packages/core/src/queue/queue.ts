import { ResourceLeaseBackpressureController } from "../backpressure/index.js";
import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import { type Logger, silentLogger } from "../contracts/health.js";
import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { OmniRelayError, omniError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import { compactBodies } from "./compact.js";
import { ResourceLeaseLimits as Limits, payloadBytes } from "./limits.js";
import { type ResolvedQueueSettings, type ResourceLeaseQueueOptions, resolveQueueSettings } from "./options.js";
import { type LeaseRecord, toPendingItem } from "./records.js";
import { captureSnapshot, type ResourceLeaseQueueSnapshot, restoreSnapshot } from "./snapshot.js";
import { QueueState, type ScheduleEntry } from "./state.js";
import { checkKeptIds, deadLetterPage, drainPage, eventChunks, type PageLimit } from "./transfer.js";
import { cancelled, expiredError, QueueTransitions } from "./transitions.js";
import type {
  ResourceLeaseCallContext,
  ResourceLeaseCompleteResult,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOptions,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
  ResourceLeaseLeaseOptions,
  ResourceLeaseRebuildOptions,
  ResourceLeaseRestoreOptions,
} from "./types.js";
import {
  optionalInteger,
  optionalText,
  validatePayload,
  validatePeerId,
  validatePendingItem,
  validateStringMap,
  validateToken,
} from "./validation.js";
import type { LeaseWaiter, PendingDelivery } from "./waiters.js";

const RESOLVED: Promise<void> = Promise.resolve();

/** A drain without a limit takes everything. */
const ALL: PageLimit = { maxItems: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };

/** Options of {@link ResourceLeaseQueue.drain}. */
export interface ResourceLeaseDrainOptions extends ResourceLeaseCallContext {
  /** Most items to take in this call; call again for the rest (`stats().pendingCount` says how many remain). */
  readonly maxItems?: number;
  /** Most payload bytes to take in this call (at least one item is always taken). */
  readonly maxBytes?: number;
}

/** Options of {@link ResourceLeaseQueue.deadLetters}. */
export interface ResourceLeaseDeadLettersOptions {
  /** Most items to list. @defaultValue 100 */
  readonly limit?: number;
  /** Most payload bytes to list (at least one item is always listed). */
  readonly maxBytes?: number;
}

/**
 * The lease queue engine (the seed's SafeTaskQueue): bounded, FIFO, fenced leases with exact deadlines, retries with
 * backoff, a dead-letter set, drain/restore, idempotent enqueue and ordered partitions. Every mutation produces one
 * or more numbered {@link ResourceLeaseReplicationEvent}s, applied to the state by the same code a rebuild uses,
 * and each call resolves only after its events were published to the replicator.
 */
export class ResourceLeaseQueue implements AsyncDisposable {
  private readonly settings: ResolvedQueueSettings;
  private readonly state: QueueState;
  private readonly tx: QueueTransitions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly replicator: ResourceLeaseReplicator | undefined;
  private readonly gate: ResourceLeaseBackpressureController | undefined;
  private readonly gateMode: "reject" | "wait";
  private status: "open" | "faulted" | "closed" = "open";
  private fault: OmniRelayError | undefined;
  private deliveries: PendingDelivery[] = [];
  private readonly waiters = new Set<LeaseWaiter>();
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private replaying = false;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for bad options. */
  constructor(options: ResourceLeaseQueueOptions = {}) {
    this.settings = resolveQueueSettings(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.replicator = options.replicator;
    this.state = new QueueState(this.settings.orderedPartitions, this.settings.idempotencyWindowMs);
    this.tx = new QueueTransitions(this.state, this.settings, options.observers ?? [], this.logger);
    this.gateMode = options.backpressure?.mode ?? "reject";
    this.gate = options.backpressure
      ? new ResourceLeaseBackpressureController({
          highWatermark: options.backpressure.highWatermark,
          ...(options.backpressure.lowWatermark !== undefined
            ? { lowWatermark: options.backpressure.lowWatermark }
            : {}),
          ...(options.backpressure.cooldownMs !== undefined ? { cooldownMs: options.backpressure.cooldownMs } : {}),
          listeners: [...(options.backpressure.listeners ?? [])],
          pendingCount: () => this.state.queuedCount,
          clock: this.clock,
          logger: this.logger,
        })
      : undefined;
  }

  /**
   * Builds a queue from a snapshot and/or an event stream (a durable log), then resumes: numbering continues after
   * the last event and fencing tokens after the highest ever issued. Events of the rebuild are not re-published;
   * the LeaseExpired events of `activeLeases: 'expire'` are new and are.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.replay_mismatch` at the first event that does
   * not fit (a gap, or a transition the state does not allow), naming its sequence number.
   */
  static async rebuild(
    events: Iterable<ResourceLeaseReplicationEvent> | AsyncIterable<ResourceLeaseReplicationEvent>,
    options: ResourceLeaseQueueOptions = {},
    rebuild: ResourceLeaseRebuildOptions = {},
  ): Promise<ResourceLeaseQueue> {
    const queue = new ResourceLeaseQueue(options);
    queue.replaying = true;
    try {
      if (rebuild.snapshot) restoreSnapshot(queue.state, rebuild.snapshot);
      for await (const event of events) {
        if (event.sequenceNumber <= queue.state.lastEventSequence) continue; // already in the snapshot
        queue.state.apply(event);
      }
    } finally {
      queue.replaying = false;
    }
    if ((rebuild.activeLeases ?? "expire") === "expire") {
      // This queue takes over as the writer: nobody holds the leases any more, and the dead-letter bounds may be
      // tighter than when the log was written. A replica ('keep') emits nothing of its own.
      const now = queue.clock.now();
      for (const lease of [...queue.state.leases.values()]) queue.tx.endLease(lease, "LeaseExpired", now, expiredError);
      queue.tx.purgeDeadLetters(now);
    }
    compactBodies(queue.state);
    await queue.finish();
    return queue;
  }

  /** The backpressure controller, when the queue has watermarks (add listeners to it). */
  get backpressure(): ResourceLeaseBackpressureController | undefined {
    return this.gate;
  }

  /** The longest `waitMs` a lease call may ask for (option `maxWaitMs`). */
  get maxWaitMs(): number {
    return this.settings.maxWaitMs;
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

  /** The whole state as a plain object (for durable snapshots and comparisons). */
  snapshot(): ResourceLeaseQueueSnapshot {
    return captureSnapshot(this.state);
  }

  /** Enqueues one item. See {@link ResourceLeaseQueue.enqueueMany}. */
  async enqueue(payload: unknown, context: ResourceLeaseCallContext = {}): Promise<ResourceLeaseEnqueueResult> {
    return this.enqueueMany([payload], context);
  }

  /**
   * Enqueues items, all or none. An item whose `requestId` was seen within the idempotency window is not enqueued
   * again; the original item's sequence id is returned.
   * @throws OmniRelayError invalid-argument (`resourcelease.payload.*`, metadata `field`), resource-exhausted
   * (`resourcelease.queue.full`, `resourcelease.backpressure` with metadata `retryAfterMs`), unavailable
   * (`resourcelease.draining`, `resourcelease.queue.closed`, `resourcelease.replication.failed`).
   */
  async enqueueMany(
    payloads: readonly unknown[],
    context: ResourceLeaseCallContext = {},
  ): Promise<ResourceLeaseEnqueueResult> {
    this.ensureOpen();
    if (!Array.isArray(payloads) || payloads.length === 0) {
      throw omniError("invalid-argument", Codes.payloadRequired, "At least one payload is required.", {
        field: "payloads",
      });
    }
    if (payloads.length > this.settings.maxBatchSize) {
      throw omniError(
        "invalid-argument",
        Codes.argumentInvalid,
        `At most ${this.settings.maxBatchSize} items per batch.`,
        {
          field: "payloads",
        },
      );
    }
    const single = payloads.length === 1;
    const limits = { maxBodyBytes: this.settings.maxBodyBytes };
    const valid = payloads.map((p, i) => validatePayload(p, single ? "payload" : `payloads[${i}]`, limits));
    while (this.gate?.isActive) {
      if (this.gateMode === "reject") {
        const retryAfterMs = this.gate.retryAfterMs();
        throw omniError("resource-exhausted", Codes.backpressure, "The queue is applying backpressure; retry later.", {
          retryAfterMs: String(retryAfterMs),
        });
      }
      await this.gate.waitUntilInactive(context.signal ? { signal: context.signal } : {});
      this.ensureOpen();
    }
    this.ensureAccepting();
    const s = this.state;
    const now = this.clock.now();
    s.pruneRequestIds(now);
    const fresh = new Set<string>();
    let added = 0;
    let addedBytes = 0;
    for (const p of valid) {
      if (p.requestId !== undefined) {
        if (s.requestIds.has(p.requestId) || fresh.has(p.requestId)) continue;
        fresh.add(p.requestId);
      }
      added++;
      addedBytes += payloadBytes(p);
    }
    this.ensureRoom(added, addedBytes);
    if (s.lastSequenceId + added > Number.MAX_SAFE_INTEGER) {
      throw omniError("resource-exhausted", Codes.sequenceExhausted, "The queue has used every item id it can issue.");
    }
    const sequenceIds: number[] = [];
    const duplicates: boolean[] = [];
    for (const payload of valid) {
      const seen = payload.requestId === undefined ? undefined : s.requestIds.get(payload.requestId);
      if (seen) {
        sequenceIds.push(seen.sequenceId);
        duplicates.push(true);
        continue;
      }
      const sequenceId = s.lastSequenceId + 1;
      this.tx.emit("Enqueue", now, context, { item: { payload, sequenceId, attempt: 1, enqueuedAt: now } });
      sequenceIds.push(sequenceId);
      duplicates.push(false);
    }
    await this.finish();
    return { sequenceIds, duplicates, stats: this.stats() };
  }

  /**
   * Grants up to `maxItems` leases. With `waitMs > 0` and nothing pending, waits for items until `waitMs` passes
   * (then returns an empty list), the signal aborts, or the queue drains.
   * @throws OmniRelayError invalid-argument (`resourcelease.argument.invalid`), unavailable (`resourcelease.draining`, …),
   * cancelled (`resourcelease.cancelled`).
   */
  async lease(options: ResourceLeaseLeaseOptions = {}): Promise<ResourceLeaseGrant[]> {
    this.ensureOpen();
    this.ensureAccepting();
    const waitMs = optionalInteger(options.waitMs, "waitMs", 0, this.settings.maxWaitMs) ?? 0;
    const maxItems = optionalInteger(options.maxItems, "maxItems", 1, this.settings.maxBatchSize) ?? 1;
    const peerId = validatePeerId(options.peerId);
    const principal = options.principal || undefined;
    const grants = this.tx.grant(maxItems, peerId, principal, this.clock.now());
    if (grants.length > 0 || waitMs === 0) {
      await this.finish();
      return this.deliverable(grants, options);
    }
    if (options.signal?.aborted) throw cancelled();
    const waited = await new Promise<ResourceLeaseGrant[]>((resolve, reject) => {
      const waiter: LeaseWaiter = {
        peerId,
        principal,
        maxItems,
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
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
    });
    return this.deliverable(waited, options);
  }

  /**
   * Grants whose caller went away while they were being committed (its signal aborted: the HTTP client closed the
   * connection, the gRPC call was cancelled) would otherwise sit leased to nobody until their leases expire. They go
   * back to the queue at once, as a failed delivery (the attempt counts: the answer may have reached the caller).
   */
  private async deliverable(
    grants: ResourceLeaseGrant[],
    options: ResourceLeaseLeaseOptions,
  ): Promise<ResourceLeaseGrant[]> {
    if (grants.length === 0 || !options.signal?.aborted || this.status !== "open") return grants;
    const now = this.clock.now();
    const error = { message: "The lease call was cancelled before its answer was delivered.", code: Codes.cancelled };
    for (const grant of grants) {
      const lease = this.state.leases.get(grant.ownershipToken.leaseId);
      if (lease?.token.fencingToken !== grant.ownershipToken.fencingToken) continue;
      this.tx.endLease(lease, "Failed", now, error, { requeue: true, delayMs: 0 });
    }
    await this.finish();
    throw cancelled();
  }

  /**
   * Extends a lease to now + `leaseDurationMs`. Always extends (no minimum interval).
   * @throws OmniRelayError failed-precondition `resourcelease.lease.fenced` (stale token), not-found
   * `resourcelease.lease.unknown_token`, permission-denied `resourcelease.lease.principal_mismatch`.
   */
  async heartbeat(token: unknown, context: ResourceLeaseCallContext = {}): Promise<ResourceLeaseHeartbeatResult> {
    const lease = await this.activeLease(token, context);
    const now = this.clock.now();
    const leaseExpiresAt = now + this.settings.leaseDurationMs;
    this.tx.emit("Heartbeat", now, context, { ownership: lease.token, leaseExpiresAt }, lease);
    await this.finish();
    return { leaseExpiresAt, remainingMs: leaseExpiresAt - now };
  }

  /**
   * Completes a lease; the item is done.
   * @throws OmniRelayError as {@link ResourceLeaseQueue.heartbeat}.
   */
  async complete(token: unknown, context: ResourceLeaseCallContext = {}): Promise<void> {
    const lease = await this.activeLease(token, context);
    this.tx.emit(
      "Completed",
      this.clock.now(),
      context,
      { ownership: lease.token, payload: lease.item.payload },
      lease,
    );
    await this.finish();
  }

  /** Completes several leases; each token succeeds or fails on its own. */
  async completeMany(
    tokens: readonly unknown[],
    context: ResourceLeaseCallContext = {},
  ): Promise<ResourceLeaseCompleteResult[]> {
    this.ensureOpen();
    if (!Array.isArray(tokens) || tokens.length > this.settings.maxBatchSize) {
      throw omniError(
        "invalid-argument",
        Codes.argumentInvalid,
        `ownershipTokens must be a list of at most ${this.settings.maxBatchSize}.`,
        {
          field: "ownershipTokens",
        },
      );
    }
    const now = this.clock.now();
    const results: ResourceLeaseCompleteResult[] = [];
    for (const [i, raw] of tokens.entries()) {
      try {
        const lease = this.tx.lookupLease(validateToken(raw, `ownershipTokens[${i}]`), context, now);
        this.tx.emit("Completed", now, context, { ownership: lease.token, payload: lease.item.payload }, lease);
        results.push({ success: true });
      } catch (error) {
        results.push({ success: false, error: OmniRelayError.from(error) });
      }
    }
    await this.finish();
    return results;
  }

  /**
   * Fails a lease. With `requeue` (the default) the item is offered again after the backoff until `maxAttempts`
   * deliveries were made, then dead-lettered; without it, it is dead-lettered at once. The backoff is scheduled,
   * never awaited here.
   * @throws OmniRelayError as {@link ResourceLeaseQueue.heartbeat}, and invalid-argument for bad options.
   */
  async fail(token: unknown, options: ResourceLeaseFailOptions = {}): Promise<ResourceLeaseFailOutcome> {
    const delayMs = optionalInteger(options.delayMs, "delayMs", 0, 7 * 24 * 3_600_000);
    if (options.requeue !== undefined && typeof options.requeue !== "boolean") {
      throw omniError("invalid-argument", Codes.argumentInvalid, "requeue must be a boolean.", { field: "requeue" });
    }
    const extra: Record<string, string> = {};
    if (options.metadata !== undefined && options.metadata !== null) {
      for (const [k, v] of Object.entries(validateStringMap(options.metadata, "metadata", Codes.argumentInvalid))) {
        extra[`failure.meta.${k}`] = v;
      }
    }
    const reason = optionalText(options.reason, "reason", Limits.errorMessageLength);
    const errorCode = optionalText(options.errorCode, "errorCode", Limits.errorCodeLength);
    const lease = await this.activeLease(token, options);
    const error: ResourceLeaseErrorInfo = {
      message: reason || "Lease failed.",
      code: errorCode || Codes.failed,
    };
    const outcome = this.tx.endLease(lease, "Failed", this.clock.now(), error, {
      requeue: options.requeue ?? true,
      ...(delayMs !== undefined ? { delayMs } : {}),
      context: options,
      metadata: extra,
    });
    await this.finish();
    return outcome;
  }

  /**
   * Starts a drain: enqueues, leases and redrives are refused with `resourcelease.draining` until `restore`; queued
   * items (pending in lease order, then delayed ones) are removed and returned, and carried in DrainSnapshot events;
   * active leases stay and may still heartbeat, complete or fail. With `maxItems`/`maxBytes` a call takes one page:
   * call again for the rest (items that come back to the queue during a drain are taken by the next call too).
   * @throws OmniRelayError invalid-argument for a bad limit, unavailable when the queue is closed or faulted.
   */
  async drain(options: ResourceLeaseDrainOptions = {}): Promise<ResourceLeasePendingItem[]> {
    this.ensureOpen();
    const limit: PageLimit = {
      maxItems: optionalInteger(options.maxItems, "maxItems", 1, Number.MAX_SAFE_INTEGER) ?? ALL.maxItems,
      maxBytes: optionalInteger(options.maxBytes, "maxBytes", 1, Number.MAX_SAFE_INTEGER) ?? ALL.maxBytes,
    };
    const items = drainPage(this.state, limit);
    const now = this.clock.now();
    for (const chunk of items.length === 0 ? [[]] : eventChunks(items)) {
      this.tx.emit("DrainSnapshot", now, options, { items: chunk }, undefined, { "drain.count": String(chunk.length) });
    }
    const draining = omniError("unavailable", Codes.draining, "The queue is draining.");
    for (const w of [...this.waiters]) {
      this.dropWaiter(w);
      w.reject(draining);
    }
    await this.finish();
    return items;
  }

  /**
   * Puts items back (all or none, in order) and ends a drain — also with an empty list. An item keeps its sequence id
   * when the id is new to this queue or names one of its own drained items; any other id could collide with an item
   * the queue holds or once held and is refused, unless `renumber` is set: then every item gets a fresh id (for
   * moving items onto a node with items of its own). The returned `sequenceIds` give each item's id, in input order.
   * @throws OmniRelayError invalid-argument (`resourcelease.restore.pending_item_required`, `resourcelease.payload.*`,
   * `resourcelease.argument.invalid` for an id above `ResourceLeaseLimits.maxSequenceId`), already-exists
   * `resourcelease.restore.duplicate_item` (without `renumber`), resource-exhausted `resourcelease.queue.full`.
   */
  async restoreItems(
    items: readonly unknown[],
    options: ResourceLeaseRestoreOptions = {},
  ): Promise<{ restoredCount: number; sequenceIds: number[] }> {
    this.ensureOpen();
    if (!Array.isArray(items)) {
      throw omniError("invalid-argument", Codes.argumentInvalid, "items must be a list.", { field: "items" });
    }
    const now = this.clock.now();
    const limits = { maxBodyBytes: this.settings.maxBodyBytes };
    let valid = items.map((item, i) => validatePendingItem(item, `items[${i}]`, now, limits));
    if (options.renumber) {
      const first = this.state.lastSequenceId + 1;
      valid = valid.map((item, i) => ({ ...item, sequenceId: first + i }));
    } else {
      checkKeptIds(this.state, valid);
    }
    this.ensureRoom(
      valid.length,
      valid.reduce((n, item) => n + payloadBytes(item.payload), 0),
    );
    const chunks = eventChunks(valid);
    for (const chunk of chunks.length === 0 ? [[]] : chunks) {
      this.tx.emit("RestoreSnapshot", now, options, { items: chunk }, undefined, {
        "restore.count": String(chunk.length),
        ...(options.renumber ? { "restore.renumbered": "true" } : {}),
      });
    }
    await this.finish();
    return { restoredCount: valid.length, sequenceIds: valid.map((i) => i.sequenceId) };
  }

  /** {@link ResourceLeaseQueue.restoreItems} keeping sequence ids; resolves with the number of items restored. */
  async restore(items: readonly unknown[], context: ResourceLeaseCallContext = {}): Promise<number> {
    return (await this.restoreItems(items, context)).restoredCount;
  }

  /** Dead-lettered items, oldest first: at most `limit` items and `maxBytes` payload bytes. */
  deadLetters(options: ResourceLeaseDeadLettersOptions = {}): ResourceLeaseDeadLetterItem[] {
    const limit: PageLimit = {
      maxItems: optionalInteger(options.limit, "limit", 1, 100_000) ?? 100,
      maxBytes: optionalInteger(options.maxBytes, "maxBytes", 1, Number.MAX_SAFE_INTEGER) ?? ALL.maxBytes,
    };
    return deadLetterPage(this.state, limit);
  }

  /**
   * Moves dead-lettered items back to pending with their attempt reset to 1. Without `sequenceIds`, redrives all
   * (up to capacity). Unknown ids are ignored, so a retried redrive is harmless.
   */
  async redrive(options: ResourceLeaseCallContext & { sequenceIds?: readonly number[] } = {}): Promise<number> {
    this.ensureOpen();
    this.ensureAccepting();
    const s = this.state;
    let ids: number[];
    if (options.sequenceIds === undefined || options.sequenceIds === null) ids = [...s.dead.keys()];
    else if (!Array.isArray(options.sequenceIds)) {
      throw omniError("invalid-argument", Codes.argumentInvalid, "sequenceIds must be a list.", {
        field: "sequenceIds",
      });
    } else ids = [...new Set(options.sequenceIds)].filter((id) => s.dead.has(id));
    this.ensureRoom(
      ids.length,
      ids.reduce((n, id) => n + s.dead.get(id)!.bytes, 0),
    );
    const now = this.clock.now();
    for (const id of ids) {
      const item = s.dead.get(id)!;
      this.tx.emit("Redriven", now, options, { item: { ...toPendingItem(item), attempt: 1 } });
    }
    await this.finish();
    return ids.length;
  }

  /**
   * Stops timers and rejects waiting lease calls with `resourcelease.queue.closed`. State that is not in a durable
   * log is lost; with one, a rebuild resumes where the log ends.
   */
  async close(): Promise<void> {
    if (this.status === "closed") return;
    this.status = "closed";
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const closed = omniError("unavailable", Codes.closed, "The queue is closed.");
    for (const w of [...this.waiters]) {
      this.dropWaiter(w);
      w.reject(closed);
    }
    this.gate?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------- internals

  private ensureOpen(): void {
    if (this.status === "closed") throw omniError("unavailable", Codes.closed, "The queue is closed.");
    if (this.status === "faulted") {
      throw new OmniRelayError({
        status: "unavailable",
        code: Codes.replicationFailed,
        message: "A replication write failed; the queue must be rebuilt from its log.",
        cause: this.fault,
      });
    }
  }

  /**
   * Refuses `count` more items of `bytes` payload bytes when they would pass the capacity or the byte budget.
   * @throws OmniRelayError resource-exhausted `resourcelease.queue.full`.
   */
  private ensureRoom(count: number, bytes: number): void {
    const { capacity, maxBytes } = this.settings;
    if (this.state.queuedCount + count > capacity) {
      throw omniError("resource-exhausted", Codes.queueFull, `The queue is full (capacity ${capacity}).`, {
        capacity: String(capacity),
      });
    }
    if (bytes > 0 && this.state.bytesHeld + bytes > maxBytes) {
      throw omniError(
        "resource-exhausted",
        Codes.queueFull,
        `The queue's items would pass its byte budget (${maxBytes}).`,
        {
          limit: "bytes",
          maxBytes: String(maxBytes),
        },
      );
    }
  }

  private ensureAccepting(): void {
    if (this.state.mode === "draining") {
      throw omniError("unavailable", Codes.draining, "The queue is draining; call restore to resume.");
    }
  }

  /** Validates a token and returns its active lease, expiring it first if its deadline has passed. */
  private async activeLease(raw: unknown, context: ResourceLeaseCallContext): Promise<LeaseRecord> {
    this.ensureOpen();
    const token = validateToken(raw);
    const now = this.clock.now();
    try {
      return this.tx.lookupLease(token, context, now);
    } catch (error) {
      await this.finish(); // publish a LeaseExpired that lookupLease may have produced
      throw error;
    }
  }

  /** After a mutation: hand items to waiters, update backpressure, arm the timer, publish. */
  private finish(): Promise<void> {
    if (this.replaying) return RESOLVED;
    if (this.waiters.size > 0 && this.status === "open" && this.state.mode === "running") this.serveWaiters();
    this.gate?.observe(this.state.queuedCount);
    this.armTimer();
    return this.commit();
  }

  private serveWaiters(): void {
    const now = this.clock.now();
    for (const waiter of this.waiters) {
      if (!this.state.pending.peekLeaseable()) break;
      this.dropWaiter(waiter);
      const grants = this.tx.grant(waiter.maxItems, waiter.peerId, waiter.principal, now);
      this.deliveries.push({ waiter, grants });
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

  private onFault(cause: unknown, events: readonly ResourceLeaseReplicationEvent[]): OmniRelayError {
    const error = new OmniRelayError({
      status: "unavailable",
      code: Codes.replicationFailed,
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
      for (const w of [...this.waiters]) {
        this.dropWaiter(w);
        w.reject(error);
      }
    }
    return error;
  }

  private isLive(entry: ScheduleEntry): boolean {
    if (entry.lease) return entry.lease.active && entry.lease.expiresAt === entry.at;
    const item = entry.item!;
    return item.state === "delayed" && item.availableAt === entry.at;
  }

  private armTimer(): void {
    if (this.status !== "open") return;
    const schedule = this.state.schedule;
    if (schedule.size > 2 * (this.state.leases.size + this.state.delayedCount) + 1024) {
      schedule.retain((e) => this.isLive(e));
    }
    let top = schedule.peek();
    while (top && !this.isLive(top)) {
      schedule.pop();
      top = schedule.peek();
    }
    const at = Math.min(
      top?.at ?? Number.POSITIVE_INFINITY,
      this.tx.nextDeadLetterExpiry() ?? Number.POSITIVE_INFINITY,
    );
    if (at === Number.POSITIVE_INFINITY || at >= this.timerAt) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, at - this.clock.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.status !== "open") return;
    const now = this.clock.now();
    const schedule = this.state.schedule;
    for (let top = schedule.peek(); top && top.at <= now; top = schedule.peek()) {
      schedule.pop();
      if (!this.isLive(top)) continue;
      if (top.lease) this.tx.endLease(top.lease, "LeaseExpired", now, expiredError);
      else this.tx.emit("Requeued", now, {}, { item: toPendingItem(top.item!) });
    }
    this.tx.purgeDeadLetters(now);
    this.finish().catch(() => {
      // The fault is recorded in onFault; nobody awaits a timer's commit.
    });
  }
}
