import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "./payload.js";

/**
 * Replication event types. The numbers are stable (stores and protobuf use them): 1–7 are the original's,
 * 8+ are the transitions the original never replicated.
 */
export const ResourceLeaseEventTypes = {
  Enqueue: 1,
  LeaseGranted: 2,
  Heartbeat: 3,
  Completed: 4,
  Failed: 5,
  DrainSnapshot: 6,
  RestoreSnapshot: 7,
  LeaseExpired: 8,
  Requeued: 9,
  DeadLettered: 10,
  Redriven: 11,
  DeadLetterPurged: 12,
  Cancelled: 13,
  ScheduleUpserted: 14,
  ScheduleRemoved: 15,
  LeaseRefused: 16,
} as const;

/** Name of a replication event type. */
export type ResourceLeaseEventType = keyof typeof ResourceLeaseEventTypes;

const typeByNumber = new Map<number, ResourceLeaseEventType>(
  Object.entries(ResourceLeaseEventTypes).map(([name, n]) => [n, name as ResourceLeaseEventType]),
);

/** Maps a stable event-type number back to its name; `undefined` for an unknown number. */
export function eventTypeFromNumber(value: number): ResourceLeaseEventType | undefined {
  return typeByNumber.get(value);
}

/**
 * One queue mutation. `sequenceNumber` is assigned by the queue in the same synchronous step as the mutation,
 * so event order is mutation order; replicators never renumber. The stream of events is enough to rebuild pending,
 * active and dead-letter state exactly (see `ResourceLeaseQueue.fromEvents`).
 *
 * Which fields each type carries:
 * - `Enqueue`: `item` (with payload), `peerId`.
 * - `LeaseGranted`: `ownership`, `peerId`, `principal`, `leaseExpiresAt`, `payload`, `error` (the item's lastError).
 * - `Heartbeat`: `ownership`, `peerId`, `leaseExpiresAt`.
 * - `Completed`: `ownership`, `peerId`, `payload`.
 * - `Failed`: `ownership`, `peerId`, `payload`, `error`; metadata `failure.requeued` (`"true"`/`"false"`, the outcome).
 * - `LeaseExpired`: `ownership`, `peerId`, `payload`.
 * - `Requeued`: `item` — the item goes back to pending (at once, or at `item.availableAt` after a backoff).
 * - `DeadLettered`: `item`, `error`; metadata `deadletter.reason`.
 * - `Redriven`: `item` — moved from the dead-letter set back to pending with its attempt reset.
 * - `DeadLetterPurged`: `item` — a dead letter left the set (retention: count, bytes or age); metadata
 *   `deadletter.purge_reason`.
 * - `Cancelled`: a queued item was cancelled: `item` (it was pending or delayed), or `ownership` and `payload` (it was
 *   leased: the lease ends, and its holder's heartbeat, complete and fail are refused with `resourcelease.lease.cancelled`);
 *   metadata `cancel.state` (`pending`, `delayed` or `active`).
 * - `ScheduleUpserted`: a cron schedule was set: `payload` (the item each slot enqueues); metadata `schedule.id`,
 *   `schedule.cron`, `schedule.timezone`, `schedule.backfill`, `schedule.backfill_window_ms`. Slots at or before the
 *   event's timestamp never fire.
 * - `ScheduleRemoved`: metadata `schedule.id`.
 * - An `Enqueue` fired by a schedule's slot carries metadata `schedule.id` and `schedule.slot` (the slot, ms since the
 *   epoch); slots at or before it never fire again.
 * - `LeaseRefused`: audit only, changes no state: a heartbeat, complete or fail with a stale token was refused.
 *   `ownership` (the token the caller gave), the caller's `peerId` and `principal`; metadata `refused.verb`
 *   (`heartbeat`, `complete` or `fail`) and `refused.code` (`resourcelease.lease.fenced` or
 *   `resourcelease.lease.cancelled`).
 * - `DrainSnapshot`: `items` (what left the queue; a large drain is several events); metadata `drain.count`.
 *   Starts a drain.
 * - `RestoreSnapshot`: `items`; metadata `restore.count`. Ends a drain.
 *
 * Every event carries metadata `queue.pending` and `queue.active` after the mutation.
 */
export interface ResourceLeaseReplicationEvent {
  readonly sequenceNumber: number;
  readonly eventType: ResourceLeaseEventType;
  /** When the mutation happened, ms since the epoch. */
  readonly timestamp: number;
  readonly ownership?: ResourceLeaseOwnershipToken;
  readonly peerId?: string;
  /** Authenticated principal of the caller, when there was one. Never a raw token. */
  readonly principal?: string;
  readonly payload?: ResourceLeaseItemPayload;
  readonly error?: ResourceLeaseErrorInfo;
  /** The item a non-lease transition acted on (Enqueue, Requeued, DeadLettered, Redriven). */
  readonly item?: ResourceLeasePendingItem;
  /** Items of a DrainSnapshot or RestoreSnapshot. */
  readonly items?: readonly ResourceLeasePendingItem[];
  /** Deadline of the lease after a LeaseGranted or Heartbeat, ms since the epoch. */
  readonly leaseExpiresAt?: number;
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * Hash of the predecessor event (`hashReplicationEvent` of `@omnirelay/core/wire`: 16 bytes of SHA-256 over its
   * canonical bytes, base64url), so a copy of the stream can be verified link by link. Absent on the first event of a
   * queue and on events written before the chain existed.
   */
  readonly previousHash?: string;
}

/** Options accepted by every async operation that can be cancelled. */
export interface CallOptions {
  /** Aborts the operation. */
  readonly signal?: AbortSignal;
}

/**
 * Publishes ordered replication events. Called by the queue in mutation order; an implementation must deliver
 * them in that order and resolve only when they are as durable as it promises.
 */
export interface ResourceLeaseReplicator {
  publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void>;
}

/** Consumes replication events one at a time. */
export interface ResourceLeaseReplicationSink {
  apply(event: ResourceLeaseReplicationEvent, options?: CallOptions): Promise<void>;
}

/** A durable, readable event log (implemented by durable replicators). */
export interface ResourceLeaseEventLog {
  /** Reads events with `sequenceNumber >= fromSequence`, in order, at most `limit` of them when given. */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent>;
  /** Sequence number of the last stored event, 0 when the log is empty. */
  lastSequence(): Promise<number>;
}
