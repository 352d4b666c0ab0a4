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
import type { ResolvedQueueSettings } from "./options.js";
import { type LeaseRecord, toPendingItem } from "./records.js";
import type { QueueState } from "./state.js";
import type { ResourceLeaseCallContext, ResourceLeaseFailOutcome } from "./types.js";

/**
 * The queue's transitions: each decides what happens, builds the event(s) that say so, and applies them through
 * {@link QueueState.apply}. Events wait in `outbox` until the queue publishes them. Internal to the queue.
 */
export class QueueTransitions {
  outbox: ResourceLeaseReplicationEvent[] = [];

  constructor(
    private readonly state: QueueState,
    private readonly settings: ResolvedQueueSettings,
    private readonly observers: ReadonlyArray<(event: ResourceLeaseReplicationEvent) => void>,
    private readonly logger: Logger,
  ) {}

  /** Builds an event, applies it to the state, tells the observers and queues it for publishing. */
  emit(
    eventType: ResourceLeaseReplicationEvent["eventType"],
    now: number,
    context: ResourceLeaseCallContext,
    fields: Partial<Omit<ResourceLeaseReplicationEvent, "sequenceNumber" | "eventType" | "timestamp" | "metadata">>,
    lease?: LeaseRecord,
    metadata?: Record<string, string>,
  ): void {
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
    for (const observe of this.observers) {
      try {
        observe(event);
      } catch (error) {
        this.logger.warn({ err: error, eventType }, "A replication observer threw; ignoring.");
      }
    }
    this.outbox.push(event);
  }

  grant(max: number, peerId: string | undefined, principal: string | undefined, now: number): ResourceLeaseGrant[] {
    const grants: ResourceLeaseGrant[] = [];
    const s = this.state;
    while (grants.length < max) {
      const item = s.pending.peekLeaseable();
      if (!item) break;
      const ownership: ResourceLeaseOwnershipToken = {
        sequenceId: item.sequenceId,
        attempt: item.attempt,
        leaseId: randomUUID(),
        fencingToken: s.lastFencingToken + 1,
      };
      const leaseExpiresAt = now + this.settings.leaseDurationMs;
      const lastError = item.lastError;
      this.emit(
        "LeaseGranted",
        now,
        { ...(peerId ? { peerId } : {}), ...(principal ? { principal } : {}) },
        {
          ownership,
          payload: item.payload,
          leaseExpiresAt,
          ...(lastError ? { error: lastError } : {}),
        },
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
        payload: item.payload,
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

  lookupLease(token: ResourceLeaseOwnershipToken, context: ResourceLeaseCallContext, now: number): LeaseRecord {
    const lease = this.state.leases.get(token.leaseId);
    const matches =
      lease !== undefined &&
      lease.token.fencingToken === token.fencingToken &&
      lease.token.sequenceId === token.sequenceId &&
      lease.token.attempt === token.attempt;
    if (!matches) {
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
      this.endLease(lease, "LeaseExpired", now, expiredError);
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
   * Ends a lease by failure or expiry: the item is requeued (at once or after a backoff) or dead-lettered.
   */
  endLease(
    lease: LeaseRecord,
    eventType: "Failed" | "LeaseExpired",
    now: number,
    error: ResourceLeaseErrorInfo,
    options: {
      requeue?: boolean;
      delayMs?: number;
      context?: ResourceLeaseCallContext;
      metadata?: Record<string, string>;
    } = {},
  ): ResourceLeaseFailOutcome {
    const item = lease.item;
    const nextAttempt = lease.token.attempt + 1;
    const requeue = (options.requeue ?? true) && nextAttempt <= this.settings.maxAttempts;
    const context = options.context ?? {};
    const base = { ownership: lease.token, payload: item.payload, error };
    const meta = { ...options.metadata, ...(eventType === "Failed" ? { "failure.requeued": String(requeue) } : {}) };
    if (!requeue) {
      this.emit(eventType, now, context, base, lease, meta);
      const reason = options.requeue === false ? "failed" : eventType === "LeaseExpired" ? "expired" : "max_attempts";
      this.emit("DeadLettered", now, context, { item: toPendingItem(item), error }, lease, {
        "deadletter.reason": reason,
      });
      this.purgeDeadLetters(now);
      return "dead_lettered";
    }
    const delay = options.delayMs ?? this.backoff(lease.token.attempt);
    const view: ResourceLeasePendingItem = {
      ...toPendingItem(item),
      attempt: nextAttempt,
      lastError: error,
      lastOwnershipToken: lease.token,
      availableAt: now + delay,
    };
    this.emit(eventType, now, context, { ...base, item: view }, lease, meta);
    if (delay > 0) return "delayed";
    this.emit("Requeued", now, context, { item: toPendingItem(item) }, lease);
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
      this.emit("DeadLetterPurged", now, {}, { item: toPendingItem(item) }, undefined, {
        "deadletter.purge_reason": reason,
      });
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

export function cancelled(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "The lease call was cancelled.",
  });
}
