import { type ResourceLeaseEventType, ResourceLeaseEventTypes } from "../contracts/events.js";
import type { ResourceLeaseErrorInfo } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseLimits as Limits } from "./limits.js";
import { f, message, orElse } from "./message.js";
import { ErrorInfo } from "./messages.js";

// The messages of `resourcelease::history` (docs/protocol.md), described once for both transports.

/**
 * One step of an item's story, built from one replication event (or, for `Heartbeat`, from a run of heartbeats of the
 * same lease, folded into a count and the last one's time).
 */
export interface ResourceLeaseHistoryEntry {
  /** The event's type: `Enqueue`, `LeaseGranted`, `Heartbeat`, `LeaseExpired`, `LeaseRefused`, `Completed`, …. */
  readonly eventType: ResourceLeaseEventType;
  /** The event's sequence number in the queue's log (a folded heartbeat run: its first heartbeat's). */
  readonly sequenceNumber: number;
  /** When it happened, ms since the epoch (a folded heartbeat run: its first heartbeat). */
  readonly at: number;
  /** The peer that held the lease, or the caller (an enqueue's producer, a refused call's stale worker). */
  readonly peerId?: string;
  /** The caller's authenticated principal, when there was one. */
  readonly principal?: string;
  /** The attempt of the lease the event is about. */
  readonly attempt?: number;
  /** The fencing token of the lease the event is about (a refused call: the stale token it gave). */
  readonly fencingToken?: number;
  /** The lease's deadline after a grant or the last heartbeat of a run. */
  readonly leaseExpiresAt?: number;
  /** How many heartbeats a `Heartbeat` entry folds. */
  readonly heartbeatCount?: number;
  /** When the last heartbeat of a `Heartbeat` entry came. */
  readonly lastHeartbeatAt?: number;
  /** The failure, expiry or dead-letter error. */
  readonly error?: ResourceLeaseErrorInfo;
  /**
   * The event's metadata without the queue counters: e.g. `lease.lock_delay_ms` (an expiry that started a lock-delay),
   * `lease.late` (a completion accepted during it), `refused.verb` and `refused.code` (a refused call),
   * `failure.requeued`, `deadletter.reason`, `cancel.state`.
   */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** An item's story, oldest first. */
export interface ResourceLeaseItemHistory {
  readonly sequenceId: number;
  /** The request id the item was enqueued with, if any. */
  readonly requestId?: string;
  readonly entries: readonly ResourceLeaseHistoryEntry[];
  /**
   * Entries left out because the item's story outgrew the queue's per-item bound (the oldest after the first are
   * dropped first). 0 when the story is whole as far as the queue's history reaches.
   */
  readonly droppedEntries: number;
}

/** `history`: exactly one of `sequenceId` and `requestId`. */
export interface HistoryRequest {
  readonly sequenceId?: number;
  readonly requestId?: string;
}

/** `history`'s answer. */
export type HistoryResponse = ResourceLeaseItemHistory;

const code = ErrorCodes.resourceLease.argumentInvalid;
const eventTypes = Object.keys(ResourceLeaseEventTypes) as ResourceLeaseEventType[];

/** One history entry. */
export const HistoryEntryMessage = message<ResourceLeaseHistoryEntry>(
  {
    eventType: f.oneOf(eventTypes, { required: code }),
    sequenceNumber: f.int({ min: 1, required: code }),
    at: f.time({ required: code }),
    peerId: f.text({ max: Limits.peerIdLength, code }),
    principal: f.text({ max: 4096, code }),
    attempt: f.int({ min: 0 }),
    fencingToken: f.int({ min: 0 }),
    leaseExpiresAt: f.time(),
    heartbeatCount: f.int({ min: 0 }),
    lastHeartbeatAt: f.time(),
    error: ErrorInfo.field,
    metadata: f.map(code),
  },
  { name: "historyEntry" },
);

/** `history`. */
export const HistoryRequestMessage = message<HistoryRequest>({
  // An item's id, which the queue's own counter may have taken above `maxSequenceId`.
  sequenceId: f.int({ min: 1 }),
  requestId: f.text({ max: Limits.requestIdLength, code, emptyIsAbsent: true }),
});

/** `history`'s answer. */
export const HistoryResponseMessage = message<HistoryResponse>({
  sequenceId: f.int({ min: 1, required: code }),
  requestId: f.text({ max: Limits.requestIdLength, code }),
  entries: orElse(f.list(HistoryEntryMessage.field), []),
  droppedEntries: orElse(f.int({ min: 0 }), 0),
});
