import { randomUUID } from "node:crypto";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { hashReplicationEvent } from "../wire/chain.js";
import type { ResolvedQueueSettings } from "./options.js";
import { inLockDelay, type LeaseRecord, payloadOf, toPendingItem } from "./records.js";
import { RefusalAudit } from "./refusal-audit.js";
import type { QueueState } from "./state.js";
import type { ResourceLeaseCallContext, ResourceLeaseFailOutcome } from "./types.js";

/**
 * Most payload bytes (bodies and strings, as `stats.bytesHeld` counts them) one lease call or session grant takes,
 * at least one item: 2 MiB, the size of a `drain` page. A `lease` of 1,000 items of 1 MiB would otherwise answer with
 * a gigabyte (past what a JSON text can hold, and past every client's message limit), leaving what it granted leased
 * to nobody.
 */
export const GRANT_MAX_BYTES = 2 * 1024 * 1024;

/** What {@link QueueTransitions} works on. */
export interface QueueTransitionsOptions {
  readonly state: QueueState;
  readonly settings: ResolvedQueueSettings;
  readonly observers: ReadonlyArray<(event: ResourceLeaseReplicationEvent) => void>;
  readonly logger: Logger;
}

/** The fields of an event that its type decides (the envelope — sequence number, type, time, metadata — is emit's). */
export type EventFields = Partial<
  Omit<ResourceLeaseReplicationEvent, "sequenceNumber" | "eventType" | "timestamp" | "metadata">
>;

/** When, for whom and with what of {@link QueueTransitions.emit}. */
export interface EmitOptions {
  readonly now: number;
  /** The caller; its peer id and principal go on the event. @defaultValue `{}` */
  readonly context?: ResourceLeaseCallContext;
  /** The lease the event is about; its peer id wins over the caller's. */
  readonly lease?: LeaseRecord;
  readonly metadata?: Record<string, string>;
}

/** How {@link QueueTransitions.endLease} ends a lease. */
export interface LeaseEnding {
  readonly eventType: "Failed" | "LeaseExpired";
  readonly now: number;
  readonly error: ResourceLeaseErrorInfo;
  /** False dead-letters the item at once. @defaultValue true */
  readonly requeue?: boolean;
  /** Delay before the item is leaseable again. @defaultValue the backoff for the failed attempt */
  readonly delayMs?: number;
  readonly context?: ResourceLeaseCallContext;
  readonly metadata?: Record<string, string>;
}

/** A heartbeat, complete or fail that was refused: who, with which token, when. */
export interface RefusedCall {
  readonly token: ResourceLeaseOwnershipToken;
  readonly verb: "heartbeat" | "complete" | "fail";
  readonly context: ResourceLeaseCallContext;
  readonly now: number;
}

const STALE_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.resourceLease.leaseFenced,
  ErrorCodes.resourceLease.leaseCancelled,
]);

/**
 * The queue's transitions: each decides what happens, builds the event(s) that say so, and applies them through
 * {@link QueueState.apply}. Events wait in `outbox` until the queue publishes them. Internal to the queue.
 */
export class QueueTransitions {
  outbox: ResourceLeaseReplicationEvent[] = [];
  private readonly state: QueueState;
  private readonly settings: ResolvedQueueSettings;
  private readonly observers: ReadonlyArray<(event: ResourceLeaseReplicationEvent) => void>;
  private readonly logger: Logger;
  private readonly refusals = new RefusalAudit();

  constructor(options: QueueTransitionsOptions) {
    this.state = options.state;
    this.settings = options.settings;
    this.observers = options.observers;
    this.logger = options.logger;
  }

  /** Builds an event, applies it to the state, tells the observers and queues it for publishing. */
  emit(eventType: ResourceLeaseReplicationEvent["eventType"], fields: EventFields, how: EmitOptions): void {
    const { now, context = {}, lease, metadata } = how;
    const peerId = lease ? lease.peerId : context.peerId || undefined;
    const principal = context.principal || undefined;
    const event = {
      sequenceNumber: this.state.lastEventSequence + 1,
      eventType,
      timestamp: now,
      ...fields,
      ...(peerId !== undefined ? { peerId } : {}),
      ...(principal !== undefined ? { principal } : {}),
      metadata: metadata ?? {},
    } as { -readonly [K in keyof ResourceLeaseReplicationEvent]: ResourceLeaseReplicationEvent[K] };
    this.state.apply(event);
    event.metadata = {
      ...event.metadata,
      "queue.pending": String(this.state.queuedCount),
      "queue.active": String(this.state.leases.size),
    };
    if (this.state.lastEventHash !== undefined) event.previousHash = this.state.lastEventHash;
    this.state.lastEventHash = hashReplicationEvent(event);
    for (const observe of this.observers) {
      try {
        observe(event);
      } catch (error) {
        this.logger.warn({ err: error, eventType }, "A replication observer threw; ignoring.");
      }
    }
    this.outbox.push(event);
  }

  /**
   * Grants up to `max` pending items to the caller `who` (its peer id and principal go on each lease), at most
   * {@link GRANT_MAX_BYTES} of payload in all (at least one item).
   */
  grant(max: number, who: ResourceLeaseCallContext, now: number): ResourceLeaseGrant[] {
    const peerId = who.peerId || undefined;
    const principal = who.principal || undefined;
    const grants: ResourceLeaseGrant[] = [];
    const s = this.state;
    let bytes = 0;
    while (grants.length < max) {
      const item = s.pending.peekLeaseable(now);
      if (!item || (grants.length > 0 && bytes + item.bytes > GRANT_MAX_BYTES)) break;
      bytes += item.bytes;
      const ownership: ResourceLeaseOwnershipToken = {
        sequenceId: item.sequenceId,
        attempt: item.attempt,
        leaseId: randomUUID(),
        fencingToken: s.lastFencingToken + 1,
      };
      const leaseExpiresAt = now + this.settings.leaseDurationMs;
      const lastError = item.lastError;
      const payload = payloadOf(item);
      this.emit(
        "LeaseGranted",
        { ownership, payload, leaseExpiresAt, ...(lastError ? { error: lastError } : {}) },
        { now, context: { ...(peerId ? { peerId } : {}), ...(principal ? { principal } : {}) } },
      );
      const g: {
        payload: ResourceLeaseItemPayload;
        sequenceId: number;
        attempt: number;
        enqueuedAt: number;
        lastError?: ResourceLeaseErrorInfo;
        ownershipToken: ResourceLeaseOwnershipToken;
        ownerPeerId?: string;
        leaseExpiresAt: number;
      } = {
        payload,
        sequenceId: item.sequenceId,
        attempt: ownership.attempt,
        enqueuedAt: item.enqueuedAt,
        ownershipToken: ownership,
        leaseExpiresAt,
      };
      if (lastError) g.lastError = lastError;
      if (peerId) g.ownerPeerId = peerId;
      grants.push(g);
    }
    return grants;
  }

  /**
   * The active lease of a token to complete, or `undefined` when lock-delay is on and the token's lease expired while
   * its item still waits out the lock-delay (also when this very lookup expires it): the completion is then accepted
   * late ({@link completeLate}). Otherwise as {@link lookupLease}.
   */
  lookupForCompletion(
    token: ResourceLeaseOwnershipToken,
    context: ResourceLeaseCallContext,
    now: number,
  ): LeaseRecord | undefined {
    const waiting = () => {
      // Not with leases bound to principals: the expired lease's principal is gone, so a late caller cannot be checked.
      const on = this.settings.lockDelayMs > 0 && !this.settings.bindLeasesToPrincipal;
      const item = on ? this.state.items.get(token.sequenceId) : undefined;
      return item !== undefined && inLockDelay(item, token);
    };
    if (waiting()) return undefined;
    try {
      return this.lookupLease(token, context, now);
    } catch (error) {
      if (waiting()) return undefined; // the lookup itself expired the lease: its lock-delay starts now
      throw error;
    }
  }

  lookupLease(token: ResourceLeaseOwnershipToken, context: ResourceLeaseCallContext, now: number): LeaseRecord {
    const lease = this.state.leases.get(token.leaseId);
    const matches =
      lease !== undefined &&
      lease.token.fencingToken === token.fencingToken &&
      lease.token.sequenceId === token.sequenceId &&
      lease.token.attempt === token.attempt;
    if (!matches) {
      const cancelledLease = this.state.cancelledLeases.get(token.leaseId);
      if (cancelledLease?.fencingToken === token.fencingToken) throw leaseCancelled(token);
      // Issued before (its item and fencing token are within what this queue has handed out): the lease ended.
      if (token.fencingToken <= this.state.lastFencingToken && token.sequenceId <= this.state.lastSequenceId) {
        throw fenced(token);
      }
      throw new OmniRelayError({
        status: "not-found",
        code: ErrorCodes.resourceLease.leaseUnknownToken,
        message: "The lease token was not issued by this queue.",
        metadata: {
          sequenceId: String(token.sequenceId),
        },
      });
    }
    if (lease.expiresAt <= now) {
      // The deadline passed before its timer ran: expire now, so a late call can never act on an expired lease.
      this.endLease(lease, { eventType: "LeaseExpired", now, error: expiredError });
      throw fenced(token);
    }
    if (this.settings.bindLeasesToPrincipal && lease.principal !== undefined && lease.principal !== context.principal) {
      throw new OmniRelayError({
        status: "permission-denied",
        code: ErrorCodes.resourceLease.leasePrincipalMismatch,
        message: "The lease belongs to another principal.",
        metadata: {
          sequenceId: String(token.sequenceId),
        },
      });
    }
    return lease;
  }

  /**
   * Completes the lease of `token`: its active lease, or late within a lock-delay ({@link lookupForCompletion}).
   * @throws OmniRelayError as {@link lookupLease} for a token that neither holds a lease nor waits out a lock-delay.
   */
  complete(token: ResourceLeaseOwnershipToken, context: ResourceLeaseCallContext, now: number): void {
    const lease = this.lookupForCompletion(token, context, now);
    if (lease) this.emit("Completed", { ownership: lease.token, payload: lease.payload }, { now, context, lease });
    else this.completeLate(token, context, now);
  }

  /**
   * Completes the item of an expired lease that still waits out its lock-delay ({@link inLockDelay}): the holder
   * finished after all, so the item is done and not granted again. The event is a `Completed` with the expired token
   * and metadata `lease.late: lock_delay`.
   */
  completeLate(token: ResourceLeaseOwnershipToken, context: ResourceLeaseCallContext, now: number): void {
    const item = this.state.items.get(token.sequenceId);
    if (!item || !inLockDelay(item, token)) throw fenced(token);
    this.emit(
      "Completed",
      { ownership: token, payload: payloadOf(item) },
      { now, context, metadata: { "lease.late": "lock_delay" } },
    );
  }

  /**
   * Records a call refused for its stale token (fenced, or its item cancelled) as an audit-only `LeaseRefused` event:
   * it changes no state, but every sink and the item's history see who was refused, for what and with which token.
   * Any other error (an unknown token, a principal mismatch, a closed queue) records nothing, and so does a repeat of
   * the same token and verb or a refusal past the audit rate ({@link RefusalAudit}).
   */
  refused(call: RefusedCall, error: unknown): void {
    if (!(error instanceof OmniRelayError) || !STALE_CODES.has(error.code)) return;
    const { token, verb, context, now } = call;
    const { sequenceId, attempt, leaseId, fencingToken } = token;
    if (!this.refusals.admit(`${leaseId}\u0000${fencingToken}\u0000${sequenceId}\u0000${verb}`, now)) return;
    this.emit(
      "LeaseRefused",
      { ownership: { sequenceId, attempt, leaseId, fencingToken } },
      { now, context, metadata: { "refused.verb": verb, "refused.code": error.code } },
    );
  }

  /**
   * Ends a lease by failure or expiry: the item is requeued (at once or after a backoff) or dead-lettered.
   */
  endLease(lease: LeaseRecord, ending: LeaseEnding): ResourceLeaseFailOutcome {
    const { eventType, now, error } = ending;
    const item = lease.item;
    const nextAttempt = lease.token.attempt + 1;
    const requeue = (ending.requeue ?? true) && nextAttempt <= this.settings.maxAttempts;
    const context = ending.context ?? {};
    const base = { ownership: lease.token, payload: lease.payload, error };
    const meta: Record<string, string> = {
      ...ending.metadata,
      ...(eventType === "Failed" ? { "failure.requeued": String(requeue) } : {}),
    };
    if (!requeue) {
      this.emit(eventType, base, { now, context, lease, metadata: meta });
      const reason = ending.requeue === false ? "failed" : eventType === "LeaseExpired" ? "expired" : "max_attempts";
      this.emit(
        "DeadLettered",
        { item: toPendingItem(item), error },
        { now, context, lease, metadata: { "deadletter.reason": reason } },
      );
      this.purgeDeadLetters(now);
      return "dead_lettered";
    }
    const backoff = ending.delayMs ?? this.backoff(lease.token.attempt);
    // Lock-delay: an unclean expiry keeps the item from a new grant for at least lockDelayMs (see inLockDelay).
    const lockDelay = eventType === "LeaseExpired" ? this.settings.lockDelayMs : 0;
    const delay = Math.max(backoff, lockDelay);
    if (lockDelay > 0) meta["lease.lock_delay_ms"] = String(lockDelay);
    const view: ResourceLeasePendingItem = {
      ...toPendingItem(item),
      attempt: nextAttempt,
      lastError: error,
      lastOwnershipToken: lease.token,
      availableAt: now + delay,
    };
    this.emit(eventType, { ...base, item: view }, { now, context, lease, metadata: meta });
    if (delay > 0) return "delayed";
    this.emit("Requeued", { item: toPendingItem(item) }, { now, context, lease });
    return "requeued";
  }

  /**
   * Keeps the dead-letter set within its bounds: the oldest dead letters leave first, each with a DeadLetterPurged
   * event naming why (`count`, `bytes` or `age`).
   */
  purgeDeadLetters(now: number): void {
    const s = this.state;
    const { deadLetterMaxCount, deadLetterMaxBytes, deadLetterMaxAgeMs } = this.settings;
    for (const item of s.dead.values()) {
      let reason: "count" | "bytes" | "age";
      if (s.dead.size > deadLetterMaxCount) reason = "count";
      else if (s.deadBytes > deadLetterMaxBytes) reason = "bytes";
      else if (deadLetterMaxAgeMs > 0 && item.deadLetteredAt + deadLetterMaxAgeMs <= now) reason = "age";
      else break;
      this.emit(
        "DeadLetterPurged",
        { item: toPendingItem(item) },
        { now, metadata: { "deadletter.purge_reason": reason } },
      );
    }
  }

  /** When the oldest dead letter reaches its age bound (for the queue's timer); undefined when none will. */
  nextDeadLetterExpiry(): number | undefined {
    if (this.settings.deadLetterMaxAgeMs === 0) return undefined;
    const oldest = this.state.dead.values().next();
    return oldest.done ? undefined : oldest.value.deadLetteredAt + this.settings.deadLetterMaxAgeMs;
  }

  private backoff(failedAttempt: number): number {
    const { initialDelayMs, multiplier, maxDelayMs } = this.settings;
    if (initialDelayMs === 0) return 0;
    return Math.min(maxDelayMs, Math.round(initialDelayMs * multiplier ** (failedAttempt - 1)));
  }
}

export const expiredError: ResourceLeaseErrorInfo = {
  message: "Lease expired without heartbeat.",
  code: ErrorCodes.resourceLease.leaseExpired,
};

export function fenced(token: ResourceLeaseOwnershipToken): OmniRelayError {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.leaseFenced,
    message: "The lease is no longer held by this token (it completed, failed, expired or was granted again).",
    metadata: { sequenceId: String(token.sequenceId), fencingToken: String(token.fencingToken) },
  });
}

/** The answer to a holder of a lease whose item was cancelled. */
export function leaseCancelled(token: ResourceLeaseOwnershipToken): OmniRelayError {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.leaseCancelled,
    message: "The leased item was cancelled; stop working on it.",
    metadata: { sequenceId: String(token.sequenceId), fencingToken: String(token.fencingToken) },
  });
}

export function cancelled(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The lease call was cancelled.",
  });
}
