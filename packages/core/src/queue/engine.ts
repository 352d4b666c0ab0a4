import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseItemHistory } from "../wire/history.js";
import { payloadBytes } from "../wire/limits.js";
import type { RestoreItem } from "../wire/messages.js";
import type { ResourceLeaseSchedule, ResourceLeaseScheduleInfo } from "../wire/schedule.js";
import { cancelItem, type ResourceLeaseCancelResult, type ResourceLeaseCancelTarget } from "./cancel.js";
import { CompactionSchedule, compactBodies } from "./compact.js";
import { ItemHistory, type ResourceLeaseHistoryTarget } from "./history.js";
import { type LeaseRecord, toPendingItem } from "./records.js";
import { QueueRuntime } from "./runtime.js";
import { scheduledPayload } from "./schedule.js";
import { removeSchedule, type SchedulePageLimit, schedulePage, setSchedule } from "./schedule-runner.js";
import { checkKeptIds, deadLetterPage, drainPage, eventChunks, type PageLimit } from "./transfer.js";
import { cancelled, type RefusedCall } from "./transitions.js";
import type {
  ResourceLeaseCallContext,
  ResourceLeaseCompleteResult,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
} from "./types.js";

/** A lease request whose values were checked at the edge. */
export interface CheckedLease extends ResourceLeaseCallContext {
  readonly waitMs: number;
  readonly maxItems: number;
  /**
   * Called once, synchronously and mid-mutation (it must not call the queue), when the call's grants are chosen and
   * their commit starts: a caller that pipelines lease calls (a worker session) may start its next one then, so an item
   * enqueued while these grants commit is granted in its own enqueue's commit instead of waiting for a second one.
   * Not called when the call ends with none.
   */
  readonly onGranted?: (count: number) => void;
}

/** A fail whose values were checked at the edge. */
export interface CheckedFail extends ResourceLeaseCallContext {
  readonly reason?: string;
  readonly errorCode?: string;
  readonly requeue?: boolean;
  readonly delayMs?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The queue's operations on values already checked at an edge (a transport, or the queue's own validating methods):
 * they enforce the queue's own rules (capacity, batch size, fencing, draining) and trust the values' shapes and
 * limits. Internal: `ResourceLeaseQueue` is the public face.
 */
export class QueueEngine extends QueueRuntime {
  /** When to compact the bodies held (amortised over the bodies taken in: see compact.ts). */
  private readonly compaction = new CompactionSchedule();

  async enqueue(
    given: readonly ResourceLeaseItemPayload[],
    context: ResourceLeaseCallContext,
  ): Promise<ResourceLeaseEnqueueResult> {
    this.ensureOpen();
    this.checkBatch(given.length, "payloads");
    while (this.gate?.isActive) {
      if (this.gateMode === "reject") {
        throw new OmniRelayError({
          status: "resource-exhausted",
          code: ErrorCodes.resourceLease.backpressure,
          message: "The queue is applying backpressure; retry later.",
          metadata: {
            retryAfterMs: String(this.gate.retryAfterMs()),
          },
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
    const payloads = given.map((p, i) => scheduledPayload(p, { now, index: i }));
    for (const p of payloads) {
      if (p.requestId !== undefined) {
        if (s.requestIds.has(p.requestId) || fresh.has(p.requestId)) continue;
        fresh.add(p.requestId);
      }
      added++;
      addedBytes += payloadBytes(p);
    }
    this.ensureRoom(added, addedBytes);
    if (s.lastSequenceId + added > Number.MAX_SAFE_INTEGER) {
      throw new OmniRelayError({
        status: "resource-exhausted",
        code: ErrorCodes.resourceLease.queueSequenceExhausted,
        message: "The queue has used every item id it can issue.",
      });
    }
    const sequenceIds: number[] = [];
    const duplicates: boolean[] = [];
    for (const payload of payloads) {
      const seen = payload.requestId === undefined ? undefined : s.requestIds.get(payload.requestId);
      if (seen) {
        sequenceIds.push(seen.sequenceId);
        duplicates.push(true);
        continue;
      }
      const sequenceId = s.lastSequenceId + 1;
      this.tx.emit("Enqueue", { item: { payload, sequenceId, attempt: 1, enqueuedAt: now } }, { now, context });
      sequenceIds.push(sequenceId);
      duplicates.push(false);
    }
    await this.finish();
    this.compactAfter(added);
    return { sequenceIds, duplicates, stats: this.stats() };
  }

  async lease(request: CheckedLease): Promise<ResourceLeaseGrant[]> {
    this.ensureOpen();
    this.ensureAccepting();
    this.checkBatch(request.maxItems, "maxItems");
    const peerId = request.peerId || undefined;
    const principal = request.principal || undefined;
    const now = this.clock.now();
    this.runDue(now); // items due this millisecond are leasable even if the timer has not run yet
    const grants = this.tx.grant(request.maxItems, { peerId, principal }, now);
    if (grants.length > 0 || request.waitMs === 0) {
      if (grants.length > 0) request.onGranted?.(grants.length);
      await this.finish();
      return this.deliverable(grants, request.signal);
    }
    const waitMs = Math.min(request.waitMs, this.settings.maxWaitMs);
    const waited = await this.waitForGrants(
      {
        peerId,
        principal,
        maxItems: request.maxItems,
        ...(request.signal ? { signal: request.signal } : {}),
        ...(request.onGranted ? { onGranted: request.onGranted } : {}),
      },
      waitMs,
    );
    return this.deliverable(waited, request.signal);
  }

  /**
   * Grants whose caller went away while they were being committed (its signal aborted: the HTTP client closed the
   * connection, the gRPC call was cancelled) would otherwise sit leased to nobody until their leases expire. They go
   * back to the queue at once, as a failed delivery (the attempt counts: the answer may have reached the caller).
   */
  private async deliverable(
    grants: ResourceLeaseGrant[],
    signal: AbortSignal | undefined,
  ): Promise<ResourceLeaseGrant[]> {
    if (grants.length === 0 || !signal?.aborted || this.status !== "open") return grants;
    const now = this.clock.now();
    const error = {
      message: "The lease call was cancelled before its answer was delivered.",
      code: ErrorCodes.resourceLease.cancelled,
    };
    for (const grant of grants) {
      const lease = this.state.leases.get(grant.ownershipToken.leaseId);
      if (lease?.token.fencingToken !== grant.ownershipToken.fencingToken) continue;
      this.tx.endLease(lease, { eventType: "Failed", now, error, requeue: true, delayMs: 0 });
    }
    await this.finish();
    throw cancelled();
  }

  async heartbeat(
    token: ResourceLeaseOwnershipToken,
    context: ResourceLeaseCallContext,
  ): Promise<ResourceLeaseHeartbeatResult> {
    const lease = await this.activeLease(token, context, "heartbeat");
    const now = this.clock.now();
    const leaseExpiresAt = now + this.settings.leaseDurationMs;
    this.tx.emit("Heartbeat", { ownership: lease.token, leaseExpiresAt }, { now, context, lease });
    await this.finish();
    return { leaseExpiresAt, remainingMs: leaseExpiresAt - now };
  }

  async complete(token: ResourceLeaseOwnershipToken, context: ResourceLeaseCallContext): Promise<void> {
    this.ensureOpen();
    const now = this.clock.now();
    try {
      this.tx.complete(token, context, now);
    } catch (error) {
      this.tx.refused({ token, verb: "complete", context, now }, error);
      await this.finish(); // publish a LeaseExpired that lookupLease may have produced, and the refusal
      throw error;
    }
    await this.finish();
    this.compactAfter(1);
  }

  /** Completes several leases; each entry (a token, or the error its check gave) succeeds or fails on its own. */
  async completeMany(
    tokens: ReadonlyArray<ResourceLeaseOwnershipToken | OmniRelayError>,
    context: ResourceLeaseCallContext,
  ): Promise<ResourceLeaseCompleteResult[]> {
    this.ensureOpen();
    this.checkBatch(tokens.length, "ownershipTokens");
    const now = this.clock.now();
    const results: ResourceLeaseCompleteResult[] = [];
    let completed = 0;
    for (const token of tokens) {
      try {
        if (token instanceof OmniRelayError) throw token;
        this.tx.complete(token, context, now);
        results.push({ success: true });
        completed++;
      } catch (error) {
        if (!(token instanceof OmniRelayError)) this.tx.refused({ token, verb: "complete", context, now }, error);
        results.push({ success: false, error: OmniRelayError.from(error) });
      }
    }
    await this.finish();
    this.compactAfter(completed);
    return results;
  }

  async fail(token: ResourceLeaseOwnershipToken, options: CheckedFail): Promise<ResourceLeaseFailOutcome> {
    const lease = await this.activeLease(token, options, "fail");
    const error: ResourceLeaseErrorInfo = {
      message: options.reason || "Lease failed.",
      code: options.errorCode || ErrorCodes.resourceLease.failed,
    };
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.metadata ?? {})) metadata[`failure.meta.${k}`] = v;
    const outcome = this.tx.endLease(lease, {
      eventType: "Failed",
      now: this.clock.now(),
      error,
      requeue: options.requeue ?? true,
      ...(options.delayMs !== undefined ? { delayMs: options.delayMs } : {}),
      context: options,
      metadata,
    });
    await this.finish();
    return outcome;
  }

  async drain(limit: PageLimit, context: ResourceLeaseCallContext): Promise<ResourceLeasePendingItem[]> {
    this.ensureOpen();
    const items = drainPage(this.state, limit);
    const now = this.clock.now();
    for (const chunk of items.length === 0 ? [[]] : eventChunks(items)) {
      this.tx.emit(
        "DrainSnapshot",
        { items: chunk },
        { now, context, metadata: { "drain.count": String(chunk.length) } },
      );
    }
    this.rejectWaiters(
      new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.resourceLease.draining,
        message: "The queue is draining.",
      }),
    );
    await this.finish();
    return items;
  }

  async restore(
    items: readonly RestoreItem[],
    options: ResourceLeaseCallContext & { readonly renumber?: boolean },
  ): Promise<{ restoredCount: number; sequenceIds: number[] }> {
    this.ensureOpen();
    const now = this.clock.now();
    const first = this.state.lastSequenceId + 1;
    const full: ResourceLeasePendingItem[] = items.map((item, i) => ({
      ...item,
      payload: scheduledPayload(item.payload, { now, index: i }),
      sequenceId: options.renumber ? first + i : item.sequenceId,
      attempt: item.attempt ?? 1,
      enqueuedAt: item.enqueuedAt ?? now,
    }));
    if (!options.renumber) checkKeptIds(this.state, full);
    this.ensureRoom(
      full.length,
      full.reduce((n, item) => n + payloadBytes(item.payload), 0),
    );
    const chunks = eventChunks(full);
    for (const chunk of chunks.length === 0 ? [[]] : chunks) {
      this.tx.emit(
        "RestoreSnapshot",
        { items: chunk },
        {
          now,
          context: options,
          metadata: {
            "restore.count": String(chunk.length),
            ...(options.renumber ? { "restore.renumbered": "true" } : {}),
          },
        },
      );
    }
    await this.finish();
    return { restoredCount: full.length, sequenceIds: full.map((i) => i.sequenceId) };
  }

  deadLetters(limit: PageLimit): ResourceLeaseDeadLetterItem[] {
    return deadLetterPage(this.state, limit);
  }

  async redrive(sequenceIds: readonly number[] | undefined, context: ResourceLeaseCallContext): Promise<number> {
    this.ensureOpen();
    this.ensureAccepting();
    const s = this.state;
    const ids =
      sequenceIds === undefined ? [...s.dead.keys()] : [...new Set(sequenceIds)].filter((id) => s.dead.has(id));
    this.ensureRoom(
      ids.length,
      ids.reduce((n, id) => n + s.dead.get(id)!.bytes, 0),
    );
    const now = this.clock.now();
    for (const id of ids) {
      this.tx.emit("Redriven", { item: { ...toPendingItem(s.dead.get(id)!), attempt: 1 } }, { now, context });
    }
    await this.finish();
    return ids.length;
  }

  /** Cancels a pending, delayed or leased item. */
  async cancel(
    target: ResourceLeaseCancelTarget,
    context: ResourceLeaseCallContext,
  ): Promise<ResourceLeaseCancelResult> {
    this.ensureOpen();
    const result = cancelItem(this, target, context);
    await this.finish();
    return result;
  }

  /** Creates or replaces a cron schedule. */
  async setSchedule(
    schedule: ResourceLeaseSchedule,
    context: ResourceLeaseCallContext,
  ): Promise<ResourceLeaseScheduleInfo> {
    this.ensureOpen();
    const info = setSchedule(this, schedule, context);
    await this.finish();
    return info;
  }

  /** Removes a cron schedule. */
  async removeSchedule(id: string, context: ResourceLeaseCallContext): Promise<void> {
    this.ensureOpen();
    removeSchedule(this, id, context);
    await this.finish();
  }

  /** A page of the queue's cron schedules, by id, and the id to list after next. */
  schedulePage(limit: SchedulePageLimit): { schedules: ResourceLeaseScheduleInfo[]; next?: string } {
    return schedulePage(this, limit);
  }

  /** Returns a token's active lease, expiring it first if its deadline has passed. */
  private async activeLease(
    token: ResourceLeaseOwnershipToken,
    context: ResourceLeaseCallContext,
    verb: RefusedCall["verb"],
  ): Promise<LeaseRecord> {
    this.ensureOpen();
    const now = this.clock.now();
    try {
      return this.tx.lookupLease(token, context, now);
    } catch (error) {
      this.tx.refused({ token, verb, context, now }, error);
      await this.finish(); // publish a LeaseExpired that lookupLease may have produced, and the refusal
      throw error;
    }
  }

  /**
   * An item's lease history, from the events this queue applied or replayed.
   * @throws OmniRelayError not-found `resourcelease.item.not_found` (also when history is off).
   */
  history(target: ResourceLeaseHistoryTarget): ResourceLeaseItemHistory {
    const history = this.state.history ?? new ItemHistory({ maxItems: 1, maxEntries: 2 });
    return history.get(target);
  }

  /** Counts `n` items taken in or finished, and compacts the bodies held when that makes a pass due. */
  private compactAfter(n: number): void {
    const s = this.state;
    if (n > 0 && this.compaction.count(n, s.items.size + s.dead.size)) compactBodies(s);
  }

  private checkBatch(size: number, field: string): void {
    if (size > this.settings.maxBatchSize) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: `At most ${this.settings.maxBatchSize} per call.`,
        metadata: {
          field,
          limit: String(this.settings.maxBatchSize),
        },
      });
    }
  }
}
