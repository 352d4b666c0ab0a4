import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { payloadBytes } from "../wire/limits.js";

/** Where an item is. `failed` is the instant between a Failed/LeaseExpired and its DeadLettered event. */
export type ItemState = "pending" | "delayed" | "active" | "failed" | "dead";

/** Internal item record; one per live or dead-lettered item. */
export interface ItemRecord {
  readonly sequenceId: number;
  readonly payload: ResourceLeaseItemPayload;
  /** What the payload counts against the byte budget ({@link payloadBytes}). */
  readonly bytes: number;
  attempt: number;
  enqueuedAt: number;
  lastError: ResourceLeaseErrorInfo | undefined;
  lastOwnershipToken: ResourceLeaseOwnershipToken | undefined;
  availableAt: number | undefined;
  state: ItemState;
  lease: LeaseRecord | undefined;
  deadLetteredAt: number;
  deadLetterReason: "failed" | "max_attempts" | "expired";
  /** Position in its key's pending heap (-1 when not pending). */
  heapIndex: number;
  /** Arrival order among pending items (set when it becomes pending): FIFO within a priority. */
  rank: number;
  /** Lease order key: its priority, less its age in levels with priority aging. Higher first. */
  order: number;
  /** Intrusive links of the pending list (arrival order). */
  prev: ItemRecord | undefined;
  next: ItemRecord | undefined;
}

/** Internal lease record; one per active lease. */
export interface LeaseRecord {
  readonly token: ResourceLeaseOwnershipToken;
  readonly item: ItemRecord;
  readonly peerId: string | undefined;
  readonly principal: string | undefined;
  expiresAt: number;
  active: boolean;
}

export function newItemRecord(item: ResourceLeasePendingItem): ItemRecord {
  return {
    sequenceId: item.sequenceId,
    payload: item.payload,
    bytes: payloadBytes(item.payload),
    attempt: item.attempt,
    enqueuedAt: item.enqueuedAt,
    lastError: item.lastError,
    lastOwnershipToken: item.lastOwnershipToken,
    availableAt: item.availableAt,
    state: "pending",
    lease: undefined,
    deadLetteredAt: 0,
    deadLetterReason: "failed",
    heapIndex: -1,
    rank: 0,
    order: 0,
    prev: undefined,
    next: undefined,
  };
}

/** The public view of an item record. */
export function toPendingItem(r: ItemRecord): ResourceLeasePendingItem {
  const out: {
    payload: ResourceLeaseItemPayload;
    sequenceId: number;
    attempt: number;
    enqueuedAt: number;
    lastError?: ResourceLeaseErrorInfo;
    lastOwnershipToken?: ResourceLeaseOwnershipToken;
    availableAt?: number;
  } = { payload: r.payload, sequenceId: r.sequenceId, attempt: r.attempt, enqueuedAt: r.enqueuedAt };
  if (r.lastError) out.lastError = r.lastError;
  if (r.lastOwnershipToken) out.lastOwnershipToken = r.lastOwnershipToken;
  if (r.availableAt !== undefined) out.availableAt = r.availableAt;
  return out;
}

/**
 * Whether `item` waits out a lock-delay for `token`: its last lease (this token) expired uncleanly and it has not been
 * granted again. Decided from the item alone (its state, last error and last token), so a queue rebuilt from a
 * snapshot decides it the same way as the live one.
 */
export function inLockDelay(item: ItemRecord, token: ResourceLeaseOwnershipToken): boolean {
  const last = item.lastOwnershipToken;
  return (
    item.state === "delayed" &&
    item.lastError?.code === ErrorCodes.resourceLease.leaseExpired &&
    last !== undefined &&
    last.leaseId === token.leaseId &&
    last.fencingToken === token.fencingToken &&
    last.sequenceId === token.sequenceId &&
    last.attempt === token.attempt
  );
}
