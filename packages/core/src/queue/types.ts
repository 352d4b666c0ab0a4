import type { CallOptions } from "../contracts/events.js";
import type { ResourceLeaseQueueStats } from "../contracts/payload.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseQueueSnapshot, ResourceLeaseSnapshotInPieces } from "./snapshot.js";

/** Who is calling, and the call's cancellation. */
export interface ResourceLeaseCallContext extends CallOptions {
  /** Peer id of the caller (a worker's stable identity). Recorded on events and leases. */
  readonly peerId?: string;
  /** Authenticated principal (verified mTLS subject or JWT subject). Never a raw token. */
  readonly principal?: string;
}

/** Options of {@link ResourceLeaseQueue.lease}. */
export interface ResourceLeaseLeaseOptions extends ResourceLeaseCallContext {
  /** How long to wait for an item when none is pending; 0 returns at once. @defaultValue 0 */
  readonly waitMs?: number;
  /** Most items to grant in one call. @defaultValue 1 */
  readonly maxItems?: number;
}

/** Options of {@link ResourceLeaseQueue.fail}. */
export interface ResourceLeaseFailOptions extends ResourceLeaseCallContext {
  readonly reason?: string;
  readonly errorCode?: string;
  /** Offer the item again (until `maxAttempts`); `false` dead-letters it at once. @defaultValue true */
  readonly requeue?: boolean;
  /** Delay before the item is offered again, overriding the queue's backoff. */
  readonly delayMs?: number;
  /** String metadata, replicated on the Failed event under `failure.meta.*`. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Result of an enqueue. */
export interface ResourceLeaseEnqueueResult {
  readonly sequenceIds: number[];
  /** Per item: true when its `requestId` was seen before and the original item's id was returned. */
  readonly duplicates: boolean[];
  readonly stats: ResourceLeaseQueueStats;
}

/** Result of a heartbeat. */
export interface ResourceLeaseHeartbeatResult {
  readonly leaseExpiresAt: number;
  readonly remainingMs: number;
}

/** What happened to a failed item. */
export type ResourceLeaseFailOutcome = "requeued" | "delayed" | "dead_lettered";

/** Per-token result of a batch complete. */
export type ResourceLeaseCompleteResult = { success: true } | { success: false; error: OmniRelayError };

/** Options of {@link ResourceLeaseQueue.rebuild}. */
export interface ResourceLeaseRebuildOptions {
  /**
   * State to start from (a durable log's latest snapshot), whole or in pieces (a large snapshot restored piece by
   * piece, never held decoded whole); the events must follow it.
   */
  readonly snapshot?: ResourceLeaseQueueSnapshot | ResourceLeaseSnapshotInPieces;
  /**
   * What to do with leases that were active at the end of the log. `'expire'` (a process restart: nobody holds
   * them any more) ends each with a LeaseExpired event — attempt counted, item requeued or dead-lettered, and its
   * token fenced. `'keep'` keeps them (a replica following a live queue). @defaultValue 'expire'
   */
  readonly activeLeases?: "expire" | "keep";
}

/** Options of {@link ResourceLeaseQueue.restoreItems}. */
export interface ResourceLeaseRestoreOptions extends ResourceLeaseCallContext {
  /** Give every restored item a fresh sequence id from this queue. @defaultValue false */
  readonly renumber?: boolean;
}

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

/** Options of {@link ResourceLeaseQueue.cancel}: exactly one of `sequenceId` and `requestId`. */
export interface ResourceLeaseCancelOptions extends ResourceLeaseCallContext {
  readonly sequenceId?: number;
  /** The `requestId` the item was enqueued with (a schedule's slot: `schedule:<id>:<slot>`). */
  readonly requestId?: string;
}
