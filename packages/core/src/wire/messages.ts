import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseLimits as Limits } from "./limits.js";
import { f, message, orElse, required } from "./message.js";

// The messages every procedure and every log share, each described once (docs/protocol.md). Adding an optional field
// to one of them means adding it here and to the proto; both transports and every log follow.

const A = ErrorCodes.resourceLease.argumentInvalid;

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
  },
  { required: ErrorCodes.resourceLease.payloadRequired, code: ErrorCodes.resourceLease.payloadInvalid },
);

const tokenInt = {
  min: 1,
  required: ErrorCodes.resourceLease.leaseTokenRequired,
  code: ErrorCodes.resourceLease.leaseTokenRequired,
};

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
    fencingToken: f.int(tokenInt),
  },
  { required: ErrorCodes.resourceLease.leaseTokenRequired, code: ErrorCodes.resourceLease.leaseTokenRequired },
);

/** A failure description. A missing message reads as empty. */
export const ErrorInfo = message<ResourceLeaseErrorInfo>({
  message: orElse(f.text({ max: Limits.errorMessageLength, code: A }), ""),
  code: f.text({ max: Limits.errorCodeLength, code: A }),
});

const itemFields = {
  payload: required(Payload, ErrorCodes.resourceLease.payloadRequired),
  lastError: ErrorInfo.field,
  lastOwnershipToken: OwnershipToken.field,
  availableAt: f.time(),
};

/** A pending item as the queue answers it and a log stores it: every field present. */
export const PendingItem = message<ResourceLeasePendingItem>({
  ...itemFields,
  sequenceId: f.int({ min: 1, required: A }),
  attempt: f.int({ min: 1, max: Limits.maxAttempt, required: A }),
  enqueuedAt: f.time({ required: A }),
});

/** A pending item as a `restore` request may send it: `attempt` reads as 1 and `enqueuedAt` as the node's clock. */
export type RestoreItem = Omit<ResourceLeasePendingItem, "attempt" | "enqueuedAt"> & {
  readonly attempt?: number;
  readonly enqueuedAt?: number;
};

/** One item of a `restore` request. */
export const RestoreItemMessage = message<RestoreItem>(
  {
    ...itemFields,
    sequenceId: f.int({ min: 1, max: Limits.maxSequenceId, required: A }),
    attempt: f.int({ min: 1, max: Limits.maxAttempt }),
    enqueuedAt: f.time(),
  },
  {
    required: ErrorCodes.resourceLease.restorePendingItemRequired,
    code: ErrorCodes.resourceLease.restorePendingItemRequired,
  },
);

/** A dead-lettered item. */
export const DeadLetterItem = message<ResourceLeaseDeadLetterItem>({
  ...itemFields,
  sequenceId: f.int({ min: 1, required: A }),
  attempt: f.int({ min: 1, required: A }),
  enqueuedAt: f.time({ required: A }),
  deadLetteredAt: f.time({ required: A }),
  reason: f.oneOf(["failed", "max_attempts", "expired"], { required: A }),
});

/** A granted lease. */
export const Grant = message<ResourceLeaseGrant>({
  payload: required(Payload, ErrorCodes.resourceLease.payloadRequired),
  sequenceId: f.int({ min: 1, required: A }),
  attempt: f.int({ min: 1, required: A }),
  enqueuedAt: f.time({ required: A }),
  lastError: ErrorInfo.field,
  ownershipToken: required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired),
  ownerPeerId: f.text({ max: Limits.peerIdLength, code: A }),
  leaseExpiresAt: f.time({ required: A }),
});

const count = f.int({ min: 0, required: A });
const optionalCount = f.int({ min: 0 });

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
