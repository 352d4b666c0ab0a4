// Codes of the ResourceLease queue, its worker and peer selection, grouped as in ErrorCodes. Each entry's
// TSDoc follows the rules in codes.ts; only codes.ts assembles these, and only ErrorCodes is public.

/** The `ErrorCodes.resourceLease` group. */
export const resourceLeaseCodes = {
  /** invalid-argument: enqueue/restore without a payload; metadata `field`. */
  payloadRequired: "resourcelease.payload.required",
  /** invalid-argument: `resourceType` missing or blank; metadata `field`. */
  payloadResourceTypeRequired: "resourcelease.payload.resource_type_required",
  /** invalid-argument: `resourceId` missing or blank; metadata `field`. */
  payloadResourceIdRequired: "resourcelease.payload.resource_id_required",
  /** invalid-argument: `partitionKey` missing or blank; metadata `field`. */
  payloadPartitionKeyRequired: "resourcelease.payload.partition_key_required",
  /** invalid-argument: `payloadEncoding` missing or blank; metadata `field`. */
  payloadEncodingRequired: "resourcelease.payload.encoding_required",
  /** invalid-argument: a payload field has the wrong type or is too large; metadata `field` (and `limit`). */
  payloadInvalid: "resourcelease.payload.invalid",
  /** invalid-argument: a payload's body is larger than the queue's `maxBodyBytes`; metadata `field`, `limit`. */
  payloadTooLarge: "resourcelease.payload.too_large",
  /**
   * invalid-argument: a request argument is out of range (`maxItems`, `waitMs`, …); metadata `field` names it, with
   * `limit` for a batch too large and `sequenceId` for a restored id out of range.
   */
  argumentInvalid: "resourcelease.argument.invalid",
  /** invalid-argument: options given to a constructor (or `open`, `close`) are invalid; metadata `option` names it. */
  optionsInvalid: "resourcelease.options.invalid",
  /** invalid-argument: an ownership token is missing or malformed. */
  leaseTokenRequired: "resourcelease.lease.token_required",
  /** not-found: the token was never issued by this queue; metadata `sequenceId`. */
  leaseUnknownToken: "resourcelease.lease.unknown_token",
  /**
   * failed-precondition: the token was issued but its lease has ended (completed, failed, expired or re-granted);
   * a worker also aborts its handler with it when the server rejects a renewal (metadata `sequenceId`, `attempt`,
   * `fencingToken`).
   */
  leaseFenced: "resourcelease.lease.fenced",
  /** permission-denied: the lease is bound to another principal; metadata `sequenceId`. */
  leasePrincipalMismatch: "resourcelease.lease.principal_mismatch",
  /** none: `lastError.code` of an item re-delivered after its lease expired. */
  leaseExpired: "resourcelease.lease.expired",
  /**
   * deadline-exceeded: a worker's lease deadline minus `safetyMarginMs` arrived without a successful renewal; the
   * reason of the handler's signal. Metadata `sequenceId`, `attempt`, `fencingToken`.
   */
  leaseExpiredLocally: "resourcelease.lease.expired_locally",
  /** unavailable: the queue is draining; enqueue and lease are refused until `restore`. */
  draining: "resourcelease.draining",
  /** unavailable: the queue is closed. */
  queueClosed: "resourcelease.queue.closed",
  /**
   * failed-precondition: this node no longer owns the queue's shard — another node took it over, or this node failed
   * to renew its ownership in time — so it serves nothing of it; metadata `owner` and `ownerUrl` name the current
   * owner when known (empty when not), `shard` the shard.
   */
  notOwner: "resourcelease.not_owner",
  /**
   * resource-exhausted: the queue holds `capacity` items (metadata `capacity`), or its items' bytes would pass
   * `maxBytes` (metadata `limit: "bytes"`, `maxBytes`).
   */
  queueFull: "resourcelease.queue.full",
  /** resource-exhausted: the queue's item ids reached the end of the safe-integer range; it takes no more items. */
  queueSequenceExhausted: "resourcelease.queue.sequence_exhausted",
  /** resource-exhausted: backpressure is active; metadata `retryAfterMs`. */
  backpressure: "resourcelease.backpressure",
  /**
   * unavailable: the calling peer is ejected by outlier detection (too many of its leases expired in a row) and gets
   * no new leases until `ejectedUntil` (ISO-8601); metadata `peerId`, `reason`, `ejectedUntil`, `retryAfterMs`,
   * `ejections`. Its heartbeat, complete and fail on leases it holds still work.
   */
  peerEjected: "resourcelease.peer.ejected",
  /** invalid-argument: a restore entry is missing. */
  restorePendingItemRequired: "resourcelease.restore.pending_item_required",
  /**
   * already-exists: a restored item's sequence id was already used by this queue (and is not one of its own drained
   * items coming back); restore with `renumber` to give the items fresh ids. Metadata `sequenceId`.
   */
  restoreDuplicateItem: "resourcelease.restore.duplicate_item",
  /** cancelled: the caller's signal aborted the call (queue, replicators, stores, the hub client). */
  cancelled: "resourcelease.cancelled",
  /** deadline-exceeded: a wait (backpressure) outlived the caller's deadline. */
  deadlineExceeded: "resourcelease.deadline_exceeded",
  /** none: the default `lastError.code` of a failure when the worker gave none. */
  failed: "resourcelease.failed",
  /**
   * failed-precondition: the lease's item was cancelled (`cancel`); heartbeat, complete and fail with its token are
   * refused with it, and a worker aborts the handler's signal with it. Metadata `sequenceId`, `fencingToken`.
   */
  leaseCancelled: "resourcelease.lease.cancelled",
  /**
   * not-found: `cancel` named no live item (unknown, already completed, cancelled or dead-lettered, or a request id
   * the queue no longer remembers), or `history` named an item the queue's bounded history does not hold (never
   * enqueued here, aged out, or history is off); metadata `sequenceId` or `requestId`.
   */
  itemNotFound: "resourcelease.item.not_found",
  /**
   * invalid-argument: a schedule definition is malformed (id, backfill policy, window, or a `delayMs` in its payload:
   * its slots say when its items are due); metadata `field`.
   */
  scheduleInvalid: "resourcelease.schedule.invalid",
  /** invalid-argument: a schedule's cron expression does not parse; metadata `field`, `cron`. */
  scheduleCronInvalid: "resourcelease.schedule.cron_invalid",
  /** invalid-argument: a schedule's time zone is not an IANA zone the runtime knows; metadata `field`, `timezone`. */
  scheduleTimezoneInvalid: "resourcelease.schedule.timezone_invalid",
  /** invalid-argument: a schedule's cron expression has no future slot (e.g. 30 February); metadata `cron`. */
  scheduleNeverFires: "resourcelease.schedule.never_fires",
  /**
   * invalid-argument: two consecutive slots of a schedule are closer than the minimum interval; metadata `cron`,
   * `minIntervalMs`.
   */
  scheduleTooFrequent: "resourcelease.schedule.too_frequent",
  /** not-found: no schedule has that id; metadata `scheduleId`. */
  scheduleNotFound: "resourcelease.schedule.not_found",
  /**
   * resource-exhausted: the queue holds the most schedules it may, or their payloads would pass the bytes they may
   * hold in all (metadata `limit`, and `bytes` for the latter).
   */
  scheduleTooMany: "resourcelease.schedule.too_many",
} as const;

/** The `ErrorCodes.worker` group. */
export const workerCodes = {
  /**
   * unavailable, cancelled: the worker is closing. `unavailable` when a handler outlived `graceMs` (the item was
   * failed with requeue); `cancelled` as the reason its own waiting `lease` call is aborted with.
   */
  shuttingDown: "resourcelease.worker.shutting_down",
  /** unavailable: the client returned more grants than the worker had free slots; the extras were failed with requeue. */
  noFreeSlot: "resourcelease.worker.no_free_slot",
  /** failed-precondition: `start()` after `close()`. */
  closed: "resourcelease.worker.closed",
  /** failed-precondition: `context.heartbeat()` after the handler settled. */
  leaseSettled: "resourcelease.worker.lease_settled",
} as const;

/** The `ErrorCodes.peers` group. */
export const peersCodes = {
  /** unavailable: the peer list is empty. */
  noneRegistered: "peers.none_registered",
  /** unavailable: no peer is available and eligible, and the caller gave no deadline. */
  noneAvailable: "peers.none_available",
  /** resource-exhausted: every available, eligible peer is at its concurrency limit. */
  allBusy: "peers.all_busy",
  /** deadline-exceeded: no peer could be acquired before the caller's deadline; metadata `deadlineMs`. */
  deadlineExceeded: "peers.deadline_exceeded",
  /** cancelled: the caller's signal aborted the acquisition. */
  cancelled: "peers.cancelled",
  /** invalid-argument: an argument of a peer call is out of range; metadata `field` names it. */
  argumentInvalid: "peers.argument_invalid",
  /** already-exists: a peer with the same id is already in the list; metadata `peerId`. */
  duplicatePeer: "peers.duplicate_peer",
} as const;
