/**
 * The work item a producer enqueues: it names a resource and carries an opaque body.
 * `resourceType`/`resourceId` identify what the work is about; `partitionKey` groups items whose order matters.
 */
export interface ResourceLeaseItemPayload {
  /** Kind of resource, e.g. `"table"`. Required, not blank. */
  readonly resourceType: string;
  /** Identity of the resource within its type. Required, not blank. */
  readonly resourceId: string;
  /** Ordering group. With `orderedPartitions` at most one item per key is leased at a time. Required, not blank. */
  readonly partitionKey: string;
  /** A label for the body's encoding, e.g. `"json"`. Required, not blank. */
  readonly payloadEncoding: string;
  /** Opaque body bytes (base64 on the JSON wire). */
  readonly body?: Uint8Array;
  /** String attributes. */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Idempotency key: an enqueue with a `requestId` seen within the dedupe window returns the original item. */
  readonly requestId?: string;
}

/** A failure description carried by an item that is re-delivered, failed or dead-lettered. */
export interface ResourceLeaseErrorInfo {
  readonly message: string;
  readonly code?: string;
}

/**
 * Proof of a lease. Every call that acts on a lease (heartbeat, complete, fail) must present the token it was granted.
 */
export interface ResourceLeaseOwnershipToken {
  /** Item id, fixed across re-deliveries. */
  readonly sequenceId: number;
  /** Delivery attempt, 1 for the first grant. */
  readonly attempt: number;
  /** Random id of this grant. */
  readonly leaseId: string;
  /**
   * Per-queue counter that strictly increases with every grant and never goes back, not across restart,
   * restore or drain. Downstream systems can reject writes that carry a lower token than one they have seen.
   */
  readonly fencingToken: number;
}

/**
 * An item that is not leased: the unit of `drain` output and `restore` input.
 * Times are milliseconds since the Unix epoch.
 */
export interface ResourceLeasePendingItem {
  readonly payload: ResourceLeaseItemPayload;
  readonly sequenceId: number;
  /** The attempt number the next grant will carry. */
  readonly attempt: number;
  readonly enqueuedAt: number;
  readonly lastError?: ResourceLeaseErrorInfo;
  readonly lastOwnershipToken?: ResourceLeaseOwnershipToken;
  /** Earliest time the item may be granted (set while a retry backoff runs). */
  readonly availableAt?: number;
}

/** An item in the dead-letter set. */
export interface ResourceLeaseDeadLetterItem extends ResourceLeasePendingItem {
  /** When the item was dead-lettered. */
  readonly deadLetteredAt: number;
  /** Why: `"failed"` (fail without requeue), `"max_attempts"` or `"expired"` (expired at its last attempt). */
  readonly reason: "failed" | "max_attempts" | "expired";
}

/** A granted lease, as returned by `lease`. */
export interface ResourceLeaseGrant {
  readonly payload: ResourceLeaseItemPayload;
  readonly sequenceId: number;
  readonly attempt: number;
  readonly enqueuedAt: number;
  readonly lastError?: ResourceLeaseErrorInfo;
  readonly ownershipToken: ResourceLeaseOwnershipToken;
  /** The peer that holds the lease (empty when the caller gave none). */
  readonly ownerPeerId?: string;
  /** Deadline of the lease, ms since the epoch. A heartbeat moves it. */
  readonly leaseExpiresAt: number;
}

/** Queue counters. */
export interface ResourceLeaseQueueStats {
  /** Items waiting for a lease, including those whose retry backoff is still running. */
  readonly pendingCount: number;
  /** Of `pendingCount`, items waiting for a retry backoff to end. */
  readonly delayedCount: number;
  readonly activeLeaseCount: number;
  readonly deadLetterCount: number;
  /** `'running'`, `'draining'`, `'faulted'` or `'closed'` (see {@link ResourceLeaseQueueState}). */
  readonly state: ResourceLeaseQueueState;
  /** Sequence number of the last replication event the queue produced. */
  readonly lastEventSequence: number;
  /** Highest fencing token issued so far. */
  readonly lastFencingToken: number;
  readonly capacity: number;
  /** Payload bytes of the items held (pending, delayed, leased), counted as for `maxBytes`. */
  readonly bytesHeld: number;
  /** The queue's byte budget (`maxBytes`). */
  readonly maxBytes: number;
  /** Payload bytes of the dead-letter set. */
  readonly deadLetterBytes: number;
}

/**
 * What a queue's `stats().state` reports on the wire: its mode (`running`, or `draining` between `drain` and
 * `restore`), or why it no longer serves (`faulted` by a failed replication write, `closed`). These values are part of
 * the protocol and do not change. They are not lifecycle states: the queue's lifecycle is `ResourceLeaseQueue.state`
 * (`running`, then `stopped`; see `LifecycleState`), and a fault is `ResourceLeaseQueue.fault`.
 */
export type ResourceLeaseQueueState = "running" | "draining" | "faulted" | "closed";
