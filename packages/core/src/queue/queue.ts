import type { ResourceLeaseBackpressureController } from "../backpressure/index.js";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { LifecycleState } from "../contracts/lifecycle.js";
import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseGrant,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { type ErrorCode, ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { hashReplicationEvent } from "../wire/chain.js";
import type { ResourceLeaseItemHistory } from "../wire/history.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { required } from "../wire/message.js";
import { OwnershipToken, Payload, RestoreItemMessage } from "../wire/messages.js";
import { requestSite } from "../wire/site.js";
import * as v from "../wire/values.js";
import { type ResourceLeaseCancelResult, readItemTarget } from "./cancel.js";
import { compactBodies } from "./compact.js";
import { QueueEngine } from "./engine.js";
import type { ResourceLeaseHistoryTarget } from "./history.js";
import {
  KEY_STATS_DEFAULT_TOP,
  KEY_STATS_MAX_TOP,
  type ResourceLeaseKeyStats,
  type ResourceLeaseKeyStatsOptions,
} from "./key-stats.js";
import type { ResourceLeaseQueueOptions } from "./options.js";
import { SLOT_REQUEST_ID_PREFIX } from "./schedules.js";
import { ResourceLeaseSchedules } from "./schedules-api.js";
import { captureSnapshot, captureSnapshotView, type ResourceLeaseQueueSnapshot, restoreSnapshot } from "./snapshot.js";
import type { ResourceLeaseQueueSnapshotView } from "./snapshot-view.js";
import type { PageLimit } from "./transfer.js";
import { expiredError } from "./transitions.js";
import type {
  ResourceLeaseCallContext,
  ResourceLeaseCancelOptions,
  ResourceLeaseCompleteResult,
  ResourceLeaseDeadLettersOptions,
  ResourceLeaseDrainOptions,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOptions,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
  ResourceLeaseLeaseOptions,
  ResourceLeaseRebuildOptions,
  ResourceLeaseRestoreOptions,
} from "./types.js";

/** A page without a limit takes everything. */
const ALL = Number.POSITIVE_INFINITY;

const engines = new WeakMap<ResourceLeaseQueue, QueueEngine>();

/**
 * The operations of a queue on values a transport has already checked (the one validation at the edge). Internal to
 * core: the dispatcher component serves a queue through it.
 */
export function queueEngine(queue: ResourceLeaseQueue): QueueEngine {
  const engine = engines.get(queue);
  if (!engine) throw new TypeError("Not a ResourceLeaseQueue of this copy of @omnirelay/core.");
  return engine;
}

const invalidArgument = (code: ErrorCode, field: string, message: string): OmniRelayError =>
  new OmniRelayError({ status: "invalid-argument", code, message, metadata: { field } });

const requiredToken = required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired);
const requiredItem = required(RestoreItemMessage, ErrorCodes.resourceLease.restorePendingItemRequired);

/**
 * The lease queue engine (the seed's SafeTaskQueue): bounded, FIFO, fenced leases with exact deadlines, retries with
 * backoff, a dead-letter set, drain/restore, idempotent enqueue and ordered partitions. Every mutation produces one
 * or more numbered {@link ResourceLeaseReplicationEvent}s, applied to the state by the same code a rebuild uses,
 * and each call resolves only after its events were published to the replicator. Every argument is checked here,
 * with the wire layer's rules (`ResourceLeaseLimits`), so whatever the queue accepts its log can store.
 */
export class ResourceLeaseQueue implements AsyncDisposable {
  private readonly engine: QueueEngine;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for bad options. */
  constructor(options: ResourceLeaseQueueOptions = {}) {
    this.engine = new QueueEngine(options);
    engines.set(this, this.engine);
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
    const engine = queue.engine;
    engine.replaying = true;
    try {
      if (rebuild.snapshot) restoreSnapshot(engine.state, rebuild.snapshot);
      let last: ResourceLeaseReplicationEvent | undefined;
      for await (const event of events) {
        if (event.sequenceNumber <= engine.state.lastEventSequence) continue; // already in the snapshot
        engine.state.apply(event);
        last = event;
      }
      // The next event links to the last one replayed (hashed once, here, not per replayed event).
      if (last) engine.state.lastEventHash = hashReplicationEvent(last);
    } finally {
      engine.replaying = false;
    }
    if ((rebuild.activeLeases ?? "expire") === "expire") {
      // This queue takes over as the writer: nobody holds the leases any more, and the dead-letter bounds may be
      // tighter than when the log was written. A replica ('keep') emits nothing of its own.
      const now = engine.clock.now();
      for (const lease of [...engine.state.leases.values()]) {
        engine.tx.endLease(lease, { eventType: "LeaseExpired", now, error: expiredError });
      }
      engine.tx.purgeDeadLetters(now);
    }
    compactBodies(engine.state);
    await engine.finish();
    return queue;
  }

  /**
   * Lifecycle state: `running` from construction (a rebuilt queue is returned running) until {@link close}, then
   * `stopped`. Its drain mode and a replication fault are not lifecycle states: `stats().state` reports those on the
   * wire (`draining`, `faulted`), and {@link fault} says what faulted it. A faulted queue is still `running` until
   * closed: it answers every mutation with `resourcelease.replication.failed` and must be rebuilt from its log.
   */
  get state(): LifecycleState {
    return this.engine.status === "closed" ? "stopped" : "running";
  }

  /**
   * The failed replication write that faulted the queue (`unavailable` `resourcelease.replication.failed`), or the
   * error it was stopped with ({@link stopServing}), if either happened; it stays after {@link close}.
   */
  get fault(): OmniRelayError | undefined {
    return this.engine.fault;
  }

  /**
   * Stops the queue serving at once without closing it: its timers stop, waiting long-polls are rejected with
   * `error`, and every later call is answered with `error` ({@link fault} becomes `error`). An ownership guard calls it
   * when this node no longer owns the queue's shard, with a failed-precondition `resourcelease.not_owner`. A
   * replicator whose publish rejects with a `resourcelease.not_owner` error stops the queue the same way (that call
   * and the later ones get the error instead of `resourcelease.replication.failed`). Called again, the new error
   * replaces the old (the guard learned who owns the shard now). No effect on a queue faulted by a failed replication
   * write, or closed.
   * @throws TypeError when `error` is not an `OmniRelayError`.
   */
  stopServing(error: OmniRelayError): void {
    if (!(error instanceof OmniRelayError)) throw new TypeError("stopServing needs an OmniRelayError.");
    this.engine.stopServing(error);
  }

  /** The backpressure controller, when the queue has watermarks (add listeners to it). */
  get backpressure(): ResourceLeaseBackpressureController | undefined {
    return this.engine.gate;
  }

  /** The longest `waitMs` a lease call may ask for (option `maxWaitMs`). */
  get maxWaitMs(): number {
    return this.engine.settings.maxWaitMs;
  }

  /** Queue counters. */
  stats(): ResourceLeaseQueueStats {
    return this.engine.stats();
  }

  /**
   * The busiest dispatch keys (option `keys`, or `orderedPartitions`): each key's active leases and pending (due)
   * items, sorted by their sum descending, then by key; at most `top` rows; none for a queue without keys. A diagnostic
   * read, off the dispatch path: it costs O(k log top) for the k keys with pending items or active leases (one pass,
   * no allocation per key; a few milliseconds per 100,000 keys), so poll it, do not call it per item.
   * @throws OmniRelayError invalid-argument `resourcelease.argument.invalid` (metadata `field: "top"`) for a `top`
   * that is not an integer from 1 to 100.
   */
  keyStats(options: ResourceLeaseKeyStatsOptions = {}): ResourceLeaseKeyStats[] {
    const top = v.integer(options?.top, requestSite("top"), { min: 1, max: KEY_STATS_MAX_TOP });
    return this.engine.state.pending.busiest(top ?? KEY_STATS_DEFAULT_TOP);
  }

  /** The whole state as a plain object (for durable snapshots and comparisons). */
  snapshot(): ResourceLeaseQueueSnapshot {
    return captureSnapshot(this.engine.state);
  }

  /**
   * The whole state as {@link snapshot} has it, captured at once but with its item lists built one entry at a time as
   * they are read: for a log that writes a large snapshot in steps (a million pending items take ~10 MB and ~160 ms to
   * capture this way, where a whole snapshot takes ~260 MB and 600-700 ms). It keeps the state of
   * the moment it was taken, whatever the queue does afterwards.
   */
  snapshotView(): ResourceLeaseQueueSnapshotView {
    return captureSnapshotView(this.engine.state);
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
    this.engine.ensureOpen();
    if (!Array.isArray(payloads) || payloads.length === 0) {
      throw invalidArgument(ErrorCodes.resourceLease.payloadRequired, "payloads", "At least one payload is required.");
    }
    const single = payloads.length === 1;
    const max = this.engine.settings.maxBodyBytes;
    const valid = payloads.map((p, i) => Payload.read(p, requestSite(single ? "payload" : `payloads[${i}]`, max)));
    for (const [i, p] of valid.entries()) {
      // A slot's request id (`schedule:<id>:<slot>`) is how a schedule fires each slot once: an enqueue that took one
      // first would stand in for the slot. A restore may bring such ids back (drained slot items), an enqueue not.
      if (p.requestId?.startsWith(SLOT_REQUEST_ID_PREFIX)) {
        throw invalidArgument(
          ErrorCodes.resourceLease.payloadInvalid,
          `${single ? "payload" : `payloads[${i}]`}.requestId`,
          `Request ids starting with '${SLOT_REQUEST_ID_PREFIX}' are reserved for schedules' slots.`,
        );
      }
    }
    return this.engine.enqueue(valid, context);
  }

  /**
   * Grants up to `maxItems` leases. With `waitMs > 0` and nothing pending, waits for items until `waitMs` passes
   * (then returns an empty list), the signal aborts, or the queue drains.
   * @throws OmniRelayError invalid-argument (`resourcelease.argument.invalid`), unavailable (`resourcelease.draining`, …),
   * cancelled (`resourcelease.cancelled`).
   */
  async lease(options: ResourceLeaseLeaseOptions = {}): Promise<ResourceLeaseGrant[]> {
    const { maxWaitMs, maxBatchSize } = this.engine.settings;
    const peerId = v.text(options.peerId, requestSite("peerId"), { max: Limits.peerIdLength });
    return this.engine.lease({
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.principal ? { principal: options.principal } : {}),
      ...(peerId ? { peerId } : {}),
      waitMs: v.integer(options.waitMs, requestSite("waitMs"), { min: 0, max: maxWaitMs }) ?? 0,
      maxItems: v.integer(options.maxItems, requestSite("maxItems"), { min: 1, max: maxBatchSize }) ?? 1,
    });
  }

  /**
   * Extends a lease to now + `leaseDurationMs`. Always extends (no minimum interval).
   * @throws OmniRelayError failed-precondition `resourcelease.lease.fenced` (stale token), not-found
   * `resourcelease.lease.unknown_token`, permission-denied `resourcelease.lease.principal_mismatch`.
   */
  async heartbeat(token: unknown, context: ResourceLeaseCallContext = {}): Promise<ResourceLeaseHeartbeatResult> {
    return this.engine.heartbeat(this.token(token), context);
  }

  /**
   * Completes a lease; the item is done.
   * @throws OmniRelayError as {@link ResourceLeaseQueue.heartbeat}.
   */
  async complete(token: unknown, context: ResourceLeaseCallContext = {}): Promise<void> {
    return this.engine.complete(this.token(token), context);
  }

  /** Completes several leases; each token succeeds or fails on its own (a malformed one fails alone). */
  async completeMany(
    tokens: readonly unknown[],
    context: ResourceLeaseCallContext = {},
  ): Promise<ResourceLeaseCompleteResult[]> {
    if (!Array.isArray(tokens)) {
      throw invalidArgument(
        ErrorCodes.resourceLease.argumentInvalid,
        "ownershipTokens",
        "ownershipTokens must be a list.",
      );
    }
    const checked = tokens.map((raw, i) => {
      try {
        return this.token(raw, `ownershipTokens[${i}]`);
      } catch (error) {
        return OmniRelayError.from(error);
      }
    });
    return this.engine.completeMany(checked, context);
  }

  /**
   * Fails a lease. With `requeue` (the default) the item is offered again after the backoff until `maxAttempts`
   * deliveries were made, then dead-lettered; without it, it is dead-lettered at once. The backoff is scheduled,
   * never awaited here.
   * @throws OmniRelayError as {@link ResourceLeaseQueue.heartbeat}, and invalid-argument for bad options.
   */
  async fail(token: unknown, options: ResourceLeaseFailOptions = {}): Promise<ResourceLeaseFailOutcome> {
    const at = (field: string) => requestSite(field);
    const reason = v.text(options.reason, at("reason"), { max: Limits.errorMessageLength });
    const errorCode = v.text(options.errorCode, at("errorCode"), { max: Limits.errorCodeLength });
    const requeue = v.bool(options.requeue, at("requeue"));
    const delayMs = v.integer(options.delayMs, at("delayMs"), { min: 0, max: 7 * 24 * 3_600_000 });
    const metadata = v.stringMap(options.metadata, at("metadata"));
    const checked = this.token(token);
    return this.engine.fail(checked, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.principal ? { principal: options.principal } : {}),
      ...(options.peerId ? { peerId: options.peerId } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(errorCode !== undefined ? { errorCode } : {}),
      ...(requeue !== undefined ? { requeue } : {}),
      ...(delayMs !== undefined ? { delayMs } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
    });
  }

  /**
   * Starts a drain: enqueues, leases and redrives are refused with `resourcelease.draining` until `restore`; queued
   * items (pending in lease order, then delayed ones) are removed and returned, and carried in DrainSnapshot events;
   * active leases stay and may still heartbeat, complete or fail. With `maxItems`/`maxBytes` a call takes one page:
   * call again for the rest (items that come back to the queue during a drain are taken by the next call too).
   * @throws OmniRelayError invalid-argument for a bad limit, unavailable when the queue is closed or faulted.
   */
  async drain(options: ResourceLeaseDrainOptions = {}): Promise<ResourceLeasePendingItem[]> {
    return this.engine.drain(this.page(options.maxItems, options.maxBytes, ALL), options);
  }

  /**
   * Puts items back (all or none, in order) and ends a drain — also with an empty list. An item keeps its sequence id
   * when no item of this queue ever had it or it names one of its own drained items; any other id could collide with
   * an item the queue holds or once held and is refused, unless `renumber` is set: then every item gets a fresh id
   * (for moving items onto a node with items of its own). The returned `sequenceIds` give each item's id, in input
   * order. A missing `attempt` reads as 1 and a missing `enqueuedAt` as now.
   * @throws OmniRelayError invalid-argument (`resourcelease.restore.pending_item_required`, `resourcelease.payload.*`,
   * `resourcelease.argument.invalid` for an id above `ResourceLeaseLimits.maxSequenceId` that is not one of the
   * queue's own drained items), already-exists
   * `resourcelease.restore.duplicate_item` (without `renumber`), resource-exhausted `resourcelease.queue.full`.
   */
  async restoreItems(
    items: readonly unknown[],
    options: ResourceLeaseRestoreOptions = {},
  ): Promise<{ restoredCount: number; sequenceIds: number[] }> {
    this.engine.ensureOpen();
    if (!Array.isArray(items)) {
      throw invalidArgument(ErrorCodes.resourceLease.argumentInvalid, "items", "items must be a list.");
    }
    const max = this.engine.settings.maxBodyBytes;
    const valid = items.map((item, i) => requiredItem.read(item, requestSite(`items[${i}]`, max))!);
    return this.engine.restore(valid, options);
  }

  /** {@link ResourceLeaseQueue.restoreItems} keeping sequence ids; resolves with the number of items restored. */
  async restore(items: readonly unknown[], context: ResourceLeaseCallContext = {}): Promise<number> {
    return (await this.restoreItems(items, context)).restoredCount;
  }

  /** Dead-lettered items, oldest first: at most `limit` items and `maxBytes` payload bytes. */
  deadLetters(options: ResourceLeaseDeadLettersOptions = {}): ResourceLeaseDeadLetterItem[] {
    const limit = v.integer(options.limit, requestSite("limit"), { min: 1, max: 100_000 }) ?? 100;
    return this.engine.deadLetters(this.page(limit, options.maxBytes, 100));
  }

  /**
   * Moves dead-lettered items back to pending with their attempt reset to 1. Without `sequenceIds`, redrives all
   * (up to capacity). Unknown ids are ignored, so a retried redrive is harmless.
   */
  async redrive(options: ResourceLeaseCallContext & { sequenceIds?: readonly number[] } = {}): Promise<number> {
    const ids = v.list(options.sequenceIds, requestSite("sequenceIds"));
    const checked = ids?.map(
      (id, i) =>
        v.integer(id, requestSite(`sequenceIds[${i}]`), {
          min: 1,
          required: ErrorCodes.resourceLease.argumentInvalid,
        })!,
    );
    return this.engine.redrive(checked, options);
  }

  /**
   * Cancels a pending or delayed item, or a leased one (its lease ends at once; the holder's heartbeat, complete and
   * fail are then refused with failed-precondition `resourcelease.lease.cancelled`). Names the item by `sequenceId` or
   * by the `requestId` it was enqueued with (while the queue remembers it: `idempotencyWindowMs`).
   * @throws OmniRelayError not-found `resourcelease.item.not_found`; invalid-argument for a bad target.
   */
  async cancel(options: ResourceLeaseCancelOptions): Promise<ResourceLeaseCancelResult> {
    const { sequenceId, requestId, ...context } = options ?? {};
    return this.engine.cancel(readItemTarget(sequenceId, requestId), context);
  }

  /**
   * An item's lease history (who enqueued it, each grant, heartbeats, expiries, refused stale calls, the end), by
   * `sequenceId` or `requestId`. Bounded by the `history` option.
   * @throws OmniRelayError not-found `resourcelease.item.not_found`; invalid-argument for a bad target.
   */
  history(target: ResourceLeaseHistoryTarget): ResourceLeaseItemHistory {
    return this.engine.history(readItemTarget(target?.sequenceId, target?.requestId));
  }

  /** The queue's cron schedules: set, remove, list. */
  get schedules(): ResourceLeaseSchedules {
    return new ResourceLeaseSchedules(this.engine);
  }

  /**
   * Stops timers and rejects waiting lease calls with `resourcelease.queue.closed`; the queue is then `stopped`. State
   * that is not in a durable log is lost; with one, a rebuild resumes where the log ends. Idempotent.
   */
  async close(): Promise<void> {
    this.engine.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private token(value: unknown, field = "ownershipToken"): ResourceLeaseOwnershipToken {
    return requiredToken.read(value, requestSite(field))!;
  }

  private page(maxItems: unknown, maxBytes: unknown, defaultItems: number): PageLimit {
    return {
      maxItems: v.integer(maxItems, requestSite("maxItems"), { min: 1 }) ?? defaultItems,
      maxBytes: v.integer(maxBytes, requestSite("maxBytes"), { min: 1 }) ?? ALL,
    };
  }
}
