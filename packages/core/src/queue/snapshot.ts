import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type ItemRecord, type LeaseRecord, newItemRecord, toPendingItem } from "./records.js";
import type { QueueState } from "./state.js";

/** An active lease in a {@link ResourceLeaseQueueSnapshot}. */
export interface ResourceLeaseActiveLeaseSnapshot {
  readonly item: ResourceLeasePendingItem;
  readonly token: ResourceLeaseOwnershipToken;
  readonly peerId?: string;
  readonly principal?: string;
  readonly leaseExpiresAt: number;
}

/**
 * The complete state of a queue at one event sequence number. Durable logs store it to bound restart time:
 * a queue rebuilt from a snapshot plus the events after it equals one rebuilt from every event.
 */
export interface ResourceLeaseQueueSnapshot {
  readonly version: 1;
  readonly lastEventSequence: number;
  readonly lastFencingToken: number;
  readonly lastSequenceId: number;
  readonly mode: "running" | "draining";
  /** Pending items in arrival order (the order they became pending: FIFO within a priority). */
  readonly pending: readonly ResourceLeasePendingItem[];
  /** Items waiting for a retry backoff to end (each has `availableAt`), in sequence-id order. */
  readonly delayed: readonly ResourceLeasePendingItem[];
  /** Active leases in fencing-token order. */
  readonly active: readonly ResourceLeaseActiveLeaseSnapshot[];
  /** Dead-lettered items in the order they were dead-lettered. */
  readonly deadLetters: readonly ResourceLeaseDeadLetterItem[];
  /** Remembered enqueue request ids: `[requestId, sequenceId, expiresAt]`. */
  readonly requestIds: readonly (readonly [string, number, number])[];
  /**
   * Ranges `[first, last]` of ids at or below `lastSequenceId` that a restore may still use: skipped ids and the
   * queue's own drained items (absent in older snapshots: none).
   */
  readonly reusableIds?: readonly (readonly [number, number])[];
}

export function toDeadLetterItem(r: ItemRecord): ResourceLeaseDeadLetterItem {
  return { ...toPendingItem(r), deadLetteredAt: r.deadLetteredAt, reason: r.deadLetterReason };
}

/** Captures the state as a plain, JSON-friendly object. */
export function captureSnapshot(state: QueueState): ResourceLeaseQueueSnapshot {
  const delayed: ResourceLeasePendingItem[] = [];
  for (const item of state.items.values()) if (item.state === "delayed") delayed.push(toPendingItem(item));
  delayed.sort((a, b) => a.sequenceId - b.sequenceId);
  const active = [...state.leases.values()]
    .sort((a, b) => a.token.fencingToken - b.token.fencingToken)
    .map((l) => {
      const out: {
        item: ResourceLeasePendingItem;
        token: ResourceLeaseOwnershipToken;
        peerId?: string;
        principal?: string;
        leaseExpiresAt: number;
      } = { item: toPendingItem(l.item), token: l.token, leaseExpiresAt: l.expiresAt };
      if (l.peerId !== undefined) out.peerId = l.peerId;
      if (l.principal !== undefined) out.principal = l.principal;
      return out;
    });
  return {
    version: 1,
    lastEventSequence: state.lastEventSequence,
    lastFencingToken: state.lastFencingToken,
    lastSequenceId: state.lastSequenceId,
    mode: state.mode,
    pending: [...state.pending.values()].map(toPendingItem),
    delayed,
    active,
    deadLetters: [...state.dead.values()].map(toDeadLetterItem),
    requestIds: [...state.requestIds].map(([id, e]) => [id, e.sequenceId, e.expiresAt] as const),
    reusableIds: state.reusableIds.toArray(),
  };
}

/** Loads a snapshot into an empty state. */
export function restoreSnapshot(state: QueueState, snapshot: ResourceLeaseQueueSnapshot): void {
  if (snapshot.version !== 1) {
    throw OmniRelayError.invalidOption("snapshot.version", `Unsupported snapshot version ${snapshot.version}.`);
  }
  if (state.lastEventSequence !== 0 || state.items.size > 0 || state.dead.size > 0) {
    throw new OmniRelayError({
      status: "failed-precondition",
      code: ErrorCodes.replication.replayMismatch,
      message: "A snapshot can only be loaded into an empty queue.",
    });
  }
  for (const p of snapshot.pending) {
    const r = newItemRecord(p);
    r.availableAt = undefined;
    state.items.set(r.sequenceId, r);
    state.pending.push(r);
    state.bytesHeld += r.bytes;
  }
  for (const d of snapshot.delayed) {
    const r = newItemRecord(d);
    r.state = "delayed";
    r.availableAt = d.availableAt ?? 0;
    state.items.set(r.sequenceId, r);
    state.bytesHeld += r.bytes;
    state.delayedCount++;
    state.delayed.push({ at: r.availableAt, item: r });
  }
  for (const a of snapshot.active) {
    const r = newItemRecord(a.item);
    r.state = "active";
    const lease: LeaseRecord = {
      token: a.token,
      item: r,
      peerId: a.peerId,
      principal: a.principal,
      expiresAt: a.leaseExpiresAt,
      active: true,
    };
    r.lease = lease;
    state.items.set(r.sequenceId, r);
    state.bytesHeld += r.bytes;
    state.leases.set(a.token.leaseId, lease);
    state.pending.leaseStarted(r);
    state.schedule.push({ at: lease.expiresAt, lease });
  }
  for (const d of snapshot.deadLetters) {
    const r = newItemRecord(d);
    r.state = "dead";
    r.deadLetteredAt = d.deadLetteredAt;
    r.deadLetterReason = d.reason;
    state.dead.set(r.sequenceId, r);
    state.deadBytes += r.bytes;
  }
  for (const [first, last] of snapshot.reusableIds ?? []) state.reusableIds.add(first, last);
  for (const [id, sequenceId, expiresAt] of snapshot.requestIds) state.requestIds.set(id, { sequenceId, expiresAt });
  state.lastEventSequence = snapshot.lastEventSequence;
  state.lastFencingToken = snapshot.lastFencingToken;
  state.lastSequenceId = snapshot.lastSequenceId;
  state.mode = snapshot.mode;
}
