import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseLimits as Limits } from "./limits.js";
import { type Field, f, message, orElse, required } from "./message.js";

// The messages every procedure and every log share, each described once (docs/protocol.md). Adding an optional field
// to one of them means adding it here and to the proto; both transports and every log follow.

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
  /**
   * Earliest time (ms since the epoch) the item may be leased. Until then it is delayed: counted in `delayedCount`,
   * invisible to `lease`, and due to the millisecond. Kept by drain/restore and the log.
   */
  readonly notBefore?: number;
  /**
   * Delay from the node's clock at enqueue (ms); the node turns it into `notBefore` and does not store it. At most one of
   * `notBefore` and `delayMs`.
   */
  readonly delayMs?: number;
  /** Priority, a 32-bit signed integer: higher is leased first, FIFO within a priority. @defaultValue 0 */
  readonly priority?: number;
}

/** A work item's payload. */
export const Payload = message<ResourceLeaseItemPayload>(
  {
    resourceType: f.text({
      max: Limits.resourceTypeLength,
      required: ErrorCodes.resourceLease.payloadResourceTypeRequired,
      code: ErrorCodes.resourceLease.payloadInvalid,
    }),
    resourceId: f.text({
      max: Limits.resourceIdLength,
      required: ErrorCodes.resourceLease.payloadResourceIdRequired,
      code: ErrorCodes.resourceLease.payloadInvalid,
    }),
    partitionKey: f.text({
      max: Limits.partitionKeyLength,
      required: ErrorCodes.resourceLease.payloadPartitionKeyRequired,
      code: ErrorCodes.resourceLease.payloadInvalid,
    }),
    payloadEncoding: f.text({
      max: Limits.payloadEncodingLength,
      required: ErrorCodes.resourceLease.payloadEncodingRequired,
      code: ErrorCodes.resourceLease.payloadInvalid,
    }),
    body: f.bytes(ErrorCodes.resourceLease.payloadInvalid),
    attributes: f.map(ErrorCodes.resourceLease.payloadInvalid),
    requestId: f.text({
      max: Limits.requestIdLength,
      code: ErrorCodes.resourceLease.payloadInvalid,
      emptyIsAbsent: true,
    }),
    notBefore: f.time({ code: ErrorCodes.resourceLease.payloadInvalid, doc: "Earliest lease time." }),
    delayMs: f.int({
      min: 0,
      max: Limits.maxDelayMs,
      code: ErrorCodes.resourceLease.payloadInvalid,
      doc: "Delay from the node's clock at enqueue, ms; becomes notBefore.",
    }),
    priority: f.int({
      min: Limits.minPriority,
      max: Limits.maxPriority,
      everywhere: true,
      code: ErrorCodes.resourceLease.payloadInvalid,
      doc: "Higher first; a 32-bit signed integer.",
    }),
  },
  {
    required: ErrorCodes.resourceLease.payloadRequired,
    code: ErrorCodes.resourceLease.payloadInvalid,
    name: "itemPayload",
  },
);

const tokenInt = {
  min: 1,
  required: ErrorCodes.resourceLease.leaseTokenRequired,
  code: ErrorCodes.resourceLease.leaseTokenRequired,
};

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

/** An ownership token. */
export const OwnershipToken = message<ResourceLeaseOwnershipToken>(
  {
    sequenceId: f.int(tokenInt),
    attempt: f.int(tokenInt),
    leaseId: f.text({
      max: Limits.leaseIdLength,
      required: ErrorCodes.resourceLease.leaseTokenRequired,
      code: ErrorCodes.resourceLease.leaseTokenRequired,
    }),
    fencingToken: f.int({ ...tokenInt, doc: "Strictly increases with every grant of the queue." }),
  },
  {
    required: ErrorCodes.resourceLease.leaseTokenRequired,
    code: ErrorCodes.resourceLease.leaseTokenRequired,
    name: "ownershipToken",
  },
);

/** A failure description carried by an item that is re-delivered, failed or dead-lettered. */
export interface ResourceLeaseErrorInfo {
  readonly message: string;
  readonly code?: string;
}

/** A failure description. A missing message reads as empty. */
export const ErrorInfo = message<ResourceLeaseErrorInfo>(
  {
    message: orElse(f.text({ max: Limits.errorMessageLength, code: ErrorCodes.resourceLease.argumentInvalid }), ""),
    code: f.text({ max: Limits.errorCodeLength, code: ErrorCodes.resourceLease.argumentInvalid }),
  },
  { name: "errorInfo" },
);

/** The fields of a pending item, in the order they are written; `sequenceId`, `attempt`, `enqueuedAt` vary by use. */
const itemFields = (sequenceId: Field<number>, attempt: Field<number>, enqueuedAt: Field<number>) => ({
  payload: required(Payload, ErrorCodes.resourceLease.payloadRequired),
  sequenceId,
  attempt,
  enqueuedAt,
  lastError: ErrorInfo.field,
  lastOwnershipToken: OwnershipToken.field,
  availableAt: f.time(),
});

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

/** A pending item as the queue answers it and a log stores it: every field present. */
export const PendingItem = message<ResourceLeasePendingItem>(
  itemFields(
    f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
    f.int({ min: 1, max: Limits.maxAttempt, required: ErrorCodes.resourceLease.argumentInvalid }),
    f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
  ),
  { name: "pendingItem" },
);

/** A pending item as a `restore` request may send it: `attempt` reads as 1 and `enqueuedAt` as the node's clock. */
export type RestoreItem = Omit<ResourceLeasePendingItem, "attempt" | "enqueuedAt"> & {
  readonly attempt?: number;
  readonly enqueuedAt?: number;
};

/** One item of a `restore` request. */
export const RestoreItemMessage = message<RestoreItem>(
  itemFields(
    // Any safe id here: above `maxSequenceId` only the queue's own drained items may come back (see checkKeptIds).
    f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
    f.int({ min: 1, max: Limits.maxAttempt }),
    f.time(),
  ),
  {
    required: ErrorCodes.resourceLease.restorePendingItemRequired,
    code: ErrorCodes.resourceLease.restorePendingItemRequired,
  },
);

/** An item in the dead-letter set. */
export interface ResourceLeaseDeadLetterItem extends ResourceLeasePendingItem {
  /** When the item was dead-lettered. */
  readonly deadLetteredAt: number;
  /** Why: `"failed"` (fail without requeue), `"max_attempts"` or `"expired"` (expired at its last attempt). */
  readonly reason: "failed" | "max_attempts" | "expired";
}

/** A dead-lettered item. */
export const DeadLetterItem = message<ResourceLeaseDeadLetterItem>({
  ...itemFields(
    f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
    f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
    f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
  ),
  deadLetteredAt: f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
  reason: f.oneOf(["failed", "max_attempts", "expired"], { required: ErrorCodes.resourceLease.argumentInvalid }),
});

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

/** A granted lease. */
export const Grant = message<ResourceLeaseGrant>({
  payload: required(Payload, ErrorCodes.resourceLease.payloadRequired),
  sequenceId: f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
  attempt: f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
  enqueuedAt: f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
  lastError: ErrorInfo.field,
  ownershipToken: required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired),
  ownerPeerId: f.text({ max: Limits.peerIdLength, code: ErrorCodes.resourceLease.argumentInvalid }),
  leaseExpiresAt: f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
});

const count = f.int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid });
const optionalCount = f.int({ min: 0 });

/** Queue counters. */
export interface ResourceLeaseQueueStats {
  /** Items waiting for a lease, including those whose retry backoff is still running. */
  readonly pendingCount: number;
  /** Of `pendingCount`, items waiting for a retry backoff to end. */
  readonly delayedCount: number;
  readonly activeLeaseCount: number;
  readonly deadLetterCount: number;
  /** `'running'`, `'draining'`, `'faulted'` or `'closed'`. */
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

/** Queue counters (every field is present in what a queue answers; older servers may leave some out). */
export const QueueStats = message<ResourceLeaseQueueStats>({
  pendingCount: count,
  delayedCount: optionalCount,
  activeLeaseCount: count,
  deadLetterCount: optionalCount,
  state: f.oneOf(["running", "draining", "faulted", "closed"]),
  lastEventSequence: optionalCount,
  lastFencingToken: optionalCount,
  capacity: optionalCount,
  bytesHeld: optionalCount,
  maxBytes: optionalCount,
  deadLetterBytes: optionalCount,
});
