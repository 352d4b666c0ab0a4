import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseSchedule } from "../wire/schedule.js";
import type { ResourceLeaseDispatchSnapshot } from "./pending.js";
import { type ItemRecord, type LeaseRecord, newItemRecord, toPendingItem } from "./records.js";
import { compileCron } from "./schedules.js";
import type { QueueState } from "./state.js";

/** A cron schedule in a {@link ResourceLeaseQueueSnapshot}: slots at or before `firedThrough` never fire. */
export interface ResourceLeaseScheduleSnapshot {
  readonly schedule: ResourceLeaseSchedule;
  readonly upsertedAt: number;
  readonly firedThrough: number;
  readonly lastSlotAt?: number;
}

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
  /** Cron schedules by id (absent in older snapshots: none). */
  readonly schedules?: readonly ResourceLeaseScheduleSnapshot[];
  /**
   * Leases ended by a cancel whose holders are still told so: `[leaseId, sequenceId, fencingToken, expiresAt]`
   * (absent in older snapshots: none).
   */
  readonly cancelledLeases?: readonly (readonly [string, number, number, number])[];
  /**
   * Per-key rate windows and fair-sharing virtual times, so a queue restored from the snapshot grants in the same
   * order as the live one (absent when there are none, and in older snapshots).
   */
  readonly dispatch?: ResourceLeaseDispatchSnapshot;
  /**
   * Hash of the event at `lastEventSequence` (`hashReplicationEvent`), so the event after the snapshot links to it
   * (absent in older snapshots and before the first event).
   */
  readonly lastEventHash?: string;
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
    ...optionalLists(state),
    ...(state.lastEventHash !== undefined ? { lastEventHash: state.lastEventHash } : {}),
  };
}

/** Schedules and cancelled leases, present only when there are some (so snapshots without them look as before). */
function optionalLists(
  state: QueueState,
): Pick<ResourceLeaseQueueSnapshot, "schedules" | "cancelledLeases" | "dispatch"> {
  const out: { -readonly [K in "schedules" | "cancelledLeases" | "dispatch"]?: ResourceLeaseQueueSnapshot[K] } = {};
  const dispatch = state.pending.exportDispatch();
  if (dispatch) out.dispatch = dispatch;
  if (state.schedules.size > 0) {
    out.schedules = [...state.schedules.values()].map((r) => ({
      schedule: r.definition,
      upsertedAt: r.upsertedAt,
      firedThrough: r.firedThrough,
      ...(r.lastSlotAt !== undefined ? { lastSlotAt: r.lastSlotAt } : {}),
    }));
  }
  if (state.cancelledLeases.size > 0) {
    out.cancelledLeases = [...state.cancelledLeases].map(
      ([leaseId, c]) => [leaseId, c.sequenceId, c.fencingToken, c.expiresAt] as const,
    );
  }
  return out;
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
  if (snapshot.dispatch) state.pending.importVirtualTime(snapshot.dispatch.vtime);
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
  if (snapshot.dispatch) state.pending.importDispatchKeys(snapshot.dispatch.keys);
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
  for (const entry of snapshot.schedules ?? []) {
    const { schedule, upsertedAt, firedThrough, lastSlotAt } = entry;
    state.schedules.set(schedule.id, {
      definition: schedule,
      pattern: compileCron(schedule.cron, schedule.timezone),
      upsertedAt,
      firedThrough,
      lastSlotAt,
      nextAt: undefined,
    });
  }
  for (const [leaseId, sequenceId, fencingToken, expiresAt] of snapshot.cancelledLeases ?? []) {
    state.cancelledLeases.set(leaseId, { sequenceId, fencingToken, expiresAt });
  }
  state.lastEventSequence = snapshot.lastEventSequence;
  state.lastEventHash = snapshot.lastEventHash;
  state.lastFencingToken = snapshot.lastFencingToken;
  state.lastSequenceId = snapshot.lastSequenceId;
  state.mode = snapshot.mode;
}
