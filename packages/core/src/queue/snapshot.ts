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
import { CapturedDeadLetters, CapturedItems, type ResourceLeaseQueueSnapshotView } from "./snapshot-view.js";
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
  return capture(
    state,
    (records) => records.map(toPendingItem),
    (records) => records.map(toDeadLetterItem),
  );
}

/** Captures the state with its item lists as columns, each item built when read (see {@link CapturedItems}). */
export function captureSnapshotView(state: QueueState): ResourceLeaseQueueSnapshotView {
  return capture(
    state,
    (records) => new CapturedItems(records),
    (records) => new CapturedDeadLetters(records),
  );
}

function capture<Items, Dead>(
  state: QueueState,
  items: (records: ItemRecord[]) => Items,
  dead: (records: ItemRecord[]) => Dead,
) {
  const delayed = state.delayedItems();
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
    version: 1 as const,
    lastEventSequence: state.lastEventSequence,
    lastFencingToken: state.lastFencingToken,
    lastSequenceId: state.lastSequenceId,
    mode: state.mode,
    pending: items(state.pending.toArray()),
    delayed: items(delayed),
    active,
    deadLetters: dead([...state.dead.values()]),
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

/** The lists of a {@link ResourceLeaseQueueSnapshot}: what {@link ResourceLeaseSnapshotInPieces} hands over in pieces. */
export type ResourceLeaseSnapshotListName =
  | "pending"
  | "delayed"
  | "active"
  | "deadLetters"
  | "requestIds"
  | "reusableIds"
  | "schedules"
  | "cancelledLeases";

/**
 * One piece of a snapshot's lists: any of them, each a run of the whole list's entries, and runs of the per-key
 * dispatch state (`dispatch.keys`).
 */
export type ResourceLeaseSnapshotPiece = {
  readonly [K in ResourceLeaseSnapshotListName]?: ResourceLeaseQueueSnapshot[K];
} & { readonly dispatchKeys?: ResourceLeaseDispatchSnapshot["keys"] };

/**
 * A {@link ResourceLeaseQueueSnapshot} handed to `ResourceLeaseQueue.rebuild` in pieces, so a large one need not be
 * held decoded whole: each piece is restored and let go before the next is read. Equal to the whole snapshot whose
 * head is `head` (with `dispatch.vtime` as `dispatchVirtualTime`) and whose lists are the pieces' runs, concatenated in
 * order. A piece that throws fails the rebuild (nothing of it is served).
 */
export interface ResourceLeaseSnapshotInPieces {
  /** Everything of the snapshot but its lists; `dispatchVirtualTime` is `dispatch.vtime` (absent without `dispatch`). */
  readonly head: Omit<ResourceLeaseQueueSnapshot, ResourceLeaseSnapshotListName | "dispatch"> & {
    readonly dispatchVirtualTime?: number;
  };
  /** The lists, in pieces, read once and in order. */
  readonly pieces: Iterable<ResourceLeaseSnapshotPiece>;
}

/** Loads a snapshot, whole or in pieces, into an empty state. */
export function restoreSnapshot(
  state: QueueState,
  snapshot: ResourceLeaseQueueSnapshot | ResourceLeaseSnapshotInPieces,
): void {
  const { head, pieces } = "pieces" in snapshot ? snapshot : snapshotInOnePiece(snapshot);
  if (head.version !== 1) {
    throw OmniRelayError.invalidOption("snapshot.version", `Unsupported snapshot version ${head.version}.`);
  }
  if (state.lastEventSequence !== 0 || state.items.size > 0 || state.dead.size > 0) {
    throw new OmniRelayError({
      status: "failed-precondition",
      code: ErrorCodes.replication.replayMismatch,
      message: "A snapshot can only be loaded into an empty queue.",
    });
  }
  const vtime = head.dispatchVirtualTime;
  if (vtime !== undefined) state.pending.importVirtualTime(vtime);
  // Per-key dispatch state applies once every pending item and lease is loaded (the pieces may split them).
  const keys: Array<ResourceLeaseDispatchSnapshot["keys"][number]> = [];
  for (const piece of pieces) {
    restorePiece(state, piece);
    for (const entry of piece.dispatchKeys ?? []) keys.push(entry);
  }
  if (vtime !== undefined) state.pending.importDispatchKeys(keys);
  else if (keys.length > 0) {
    throw OmniRelayError.invalidOption("snapshot.pieces", "Per-key dispatch state needs the virtual time in the head.");
  }
  state.lastEventSequence = head.lastEventSequence;
  state.lastEventHash = head.lastEventHash;
  state.lastFencingToken = head.lastFencingToken;
  state.lastSequenceId = head.lastSequenceId;
  state.mode = head.mode;
}

/** A snapshot taken apart: its head (counters and the rest), its lists, its per-key dispatch state. Internal. */
export function splitSnapshot(snapshot: ResourceLeaseQueueSnapshot) {
  const {
    dispatch,
    pending,
    delayed,
    active,
    deadLetters,
    requestIds,
    reusableIds,
    schedules,
    cancelledLeases,
    ...head
  } = snapshot;
  const lists = { pending, delayed, active, deadLetters, requestIds, reusableIds, schedules, cancelledLeases };
  return { head, lists, dispatch };
}

/** A whole snapshot in the form of {@link ResourceLeaseSnapshotInPieces}: its head and all its lists as one piece. */
export function snapshotInOnePiece(snapshot: ResourceLeaseQueueSnapshot): ResourceLeaseSnapshotInPieces {
  const { head, lists, dispatch } = splitSnapshot(snapshot);
  return {
    head: { ...head, ...(dispatch ? { dispatchVirtualTime: dispatch.vtime } : {}) },
    pieces: [{ ...lists, ...(dispatch ? { dispatchKeys: dispatch.keys } : {}) }],
  };
}

/** Loads one piece's lists (items, leases, dead letters, ids, schedules, cancelled leases). */
function restorePiece(state: QueueState, piece: ResourceLeaseSnapshotPiece): void {
  for (const p of piece.pending ?? []) {
    const r = newItemRecord(p);
    r.availableAt = undefined;
    state.items.set(r.sequenceId, r);
    state.pending.push(r);
    state.bytesHeld += r.bytes;
  }
  for (const d of piece.delayed ?? []) {
    const r = newItemRecord(d);
    r.state = "delayed";
    r.availableAt = d.availableAt ?? 0;
    state.items.set(r.sequenceId, r);
    state.bytesHeld += r.bytes;
    state.delayedCount++;
    state.delayed.push({ at: r.availableAt, item: r });
  }
  for (const a of piece.active ?? []) restoreLease(state, a);
  for (const d of piece.deadLetters ?? []) {
    const r = newItemRecord(d);
    r.state = "dead";
    r.deadLetteredAt = d.deadLetteredAt;
    r.deadLetterReason = d.reason;
    state.dead.set(r.sequenceId, r);
    state.deadBytes += r.bytes;
  }
  for (const [first, last] of piece.reusableIds ?? []) state.reusableIds.add(first, last);
  for (const [id, sequenceId, expiresAt] of piece.requestIds ?? []) state.requestIds.set(id, { sequenceId, expiresAt });
  for (const entry of piece.schedules ?? []) {
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
  for (const [leaseId, sequenceId, fencingToken, expiresAt] of piece.cancelledLeases ?? []) {
    state.cancelledLeases.set(leaseId, { sequenceId, fencingToken, expiresAt });
  }
}

function restoreLease(state: QueueState, a: ResourceLeaseActiveLeaseSnapshot): void {
  const r = newItemRecord(a.item);
  r.state = "active";
  const lease: LeaseRecord = {
    token: a.token,
    item: r,
    payload: a.item.payload,
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
