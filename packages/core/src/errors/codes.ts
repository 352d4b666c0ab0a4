/**
 * Stable error codes of the ResourceLease surface. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const ResourceLeaseErrorCodes = {
  /** invalid-argument: enqueue/restore without a payload. */
  payloadRequired: "resourcelease.payload.required",
  /** invalid-argument: `resourceType` missing or blank. */
  resourceTypeRequired: "resourcelease.payload.resource_type_required",
  /** invalid-argument: `resourceId` missing or blank. */
  resourceIdRequired: "resourcelease.payload.resource_id_required",
  /** invalid-argument: `partitionKey` missing or blank. */
  partitionKeyRequired: "resourcelease.payload.partition_key_required",
  /** invalid-argument: `payloadEncoding` missing or blank. */
  encodingRequired: "resourcelease.payload.encoding_required",
  /** invalid-argument: a payload field has the wrong type or is too large. */
  payloadInvalid: "resourcelease.payload.invalid",
  /** invalid-argument: a payload's body is larger than the queue's `maxBodyBytes`; metadata `field`, `limit`. */
  payloadTooLarge: "resourcelease.payload.too_large",
  /** invalid-argument: a request argument is out of range (`maxItems`, `waitMs`, …); metadata `field` names it. */
  argumentInvalid: "resourcelease.argument.invalid",
  /** invalid-argument: an ownership token is missing or malformed. */
  tokenRequired: "resourcelease.lease.token_required",
  /** not-found: the token was never issued by this queue. */
  unknownToken: "resourcelease.lease.unknown_token",
  /** failed-precondition: the token was issued but its lease has ended (completed, failed, expired or re-granted). */
  fenced: "resourcelease.lease.fenced",
  /** permission-denied: the lease is bound to another principal. */
  principalMismatch: "resourcelease.lease.principal_mismatch",
  /** unavailable: the queue is draining; enqueue and lease are refused until `restore`. */
  draining: "resourcelease.draining",
  /** unavailable: the queue is closed. */
  closed: "resourcelease.queue.closed",
  /**
   * resource-exhausted: the queue holds `capacity` items (metadata `capacity`), or its items' bytes would pass
   * `maxBytes` (metadata `limit: "bytes"`, `maxBytes`).
   */
  queueFull: "resourcelease.queue.full",
  /** resource-exhausted: the queue's item ids reached the end of the safe-integer range; it takes no more items. */
  sequenceExhausted: "resourcelease.queue.sequence_exhausted",
  /** resource-exhausted: backpressure is active; metadata `retryAfterMs`. */
  backpressure: "resourcelease.backpressure",
  /** invalid-argument: a restore entry is missing. */
  restoreItemRequired: "resourcelease.restore.pending_item_required",
  /**
   * already-exists: a restored item's sequence id was already used by this queue (and is not one of its own drained
   * items coming back); restore with `renumber` to give the items fresh ids.
   */
  restoreDuplicate: "resourcelease.restore.duplicate_item",
  /** unavailable: a replication write failed; the queue refuses work until it is rebuilt from its log. */
  replicationFailed: "resourcelease.replication.failed",
  /** invalid-argument: options given to a constructor are invalid; metadata `option` names it. */
  optionsInvalid: "resourcelease.options.invalid",
  /** cancelled: the caller's signal aborted the call. */
  cancelled: "resourcelease.cancelled",
  /** deadline-exceeded: a wait (backpressure) outlived the caller's deadline. */
  deadlineExceeded: "resourcelease.deadline_exceeded",
  /** failed-precondition: a replayed event does not fit the state being rebuilt. */
  replayMismatch: "resourcelease.replication.replay_mismatch",
  /** Default code put on a failure when the worker gave none. */
  failed: "resourcelease.failed",
  /** `lastError.code` of an item re-delivered after its lease expired. */
  leaseExpired: "resourcelease.lease.expired",
} as const;

/** Union of every code in {@link ResourceLeaseErrorCodes}. */
export type ResourceLeaseErrorCode = (typeof ResourceLeaseErrorCodes)[keyof typeof ResourceLeaseErrorCodes];
