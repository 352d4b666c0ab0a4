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

/**
 * Internal item record; one per live or dead-lettered item. Its body is held as a place in a buffer (the buffer, an
 * offset and a length: three fields of the record) rather than as a `Uint8Array` view of its own, which costs ~96
 * bytes per item a queue holds; {@link payloadOf} builds the payload with its body when an event or an answer needs it.
 */
export interface ItemRecord {
  readonly sequenceId: number;
  /** The payload without its body (the payload itself when it has none): every field a queue reads to order items. */
  readonly meta: ResourceLeaseItemPayload;
  /** The buffer the body lies in, at {@link bodyOffset} for {@link bodyLength} bytes; undefined: no body. */
  bodyBuffer: ArrayBufferLike | undefined;
  bodyOffset: number;
  bodyLength: number;
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
  /** The item's payload as granted (with its body), for the events that end the lease. */
  readonly payload: ResourceLeaseItemPayload;
  readonly peerId: string | undefined;
  readonly principal: string | undefined;
  expiresAt: number;
  active: boolean;
}

const EMPTY = new ArrayBuffer(0);

export function newItemRecord(item: ResourceLeasePendingItem): ItemRecord {
  const payload = item.payload;
  const body = payload.body;
  return {
    sequenceId: item.sequenceId,
    meta: body === undefined ? payload : buildPayload(payload, undefined),
    // An empty body stays a body (not "none"), but pins no caller's buffer.
    bodyBuffer: body === undefined ? undefined : body.byteLength === 0 ? EMPTY : body.buffer,
    bodyOffset: body === undefined || body.byteLength === 0 ? 0 : body.byteOffset,
    bodyLength: body?.byteLength ?? 0,
    bytes: payloadBytes(payload),
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

/** The item's payload with its body (a fresh object and view on each call when it has one). */
export function payloadOf(r: ItemRecord): ResourceLeaseItemPayload {
  const buffer = r.bodyBuffer;
  if (buffer === undefined) return r.meta;
  return buildPayload(r.meta, new Uint8Array(buffer, r.bodyOffset, r.bodyLength));
}

/**
 * A copy of `m` with `body` (none when undefined). Every field of the payload, added in the wire message's order as
 * its decoder adds them, so that payloads built here share their hidden classes with decoded ones (the event codecs
 * and hashes that read both stay monomorphic). records.test.ts checks the list against the wire message's fields.
 */
function buildPayload(m: ResourceLeaseItemPayload, body: Uint8Array | undefined): ResourceLeaseItemPayload {
  const out: { -readonly [K in keyof ResourceLeaseItemPayload]?: ResourceLeaseItemPayload[K] } = {};
  out.resourceType = m.resourceType;
  out.resourceId = m.resourceId;
  out.partitionKey = m.partitionKey;
  out.payloadEncoding = m.payloadEncoding;
  if (body !== undefined) out.body = body;
  if (m.attributes !== undefined) out.attributes = m.attributes;
  if (m.requestId !== undefined) out.requestId = m.requestId;
  if (m.notBefore !== undefined) out.notBefore = m.notBefore;
  if (m.delayMs !== undefined) out.delayMs = m.delayMs;
  if (m.priority !== undefined) out.priority = m.priority;
  return out as ResourceLeaseItemPayload;
}

/** The public view of an item record. */
export function toPendingItem(r: ItemRecord): ResourceLeasePendingItem {
  return pendingItemOf(r, r.attempt, r);
}

/** The fields of an item record that are rarely set and can change while it is held. */
export type RareItemFields = Pick<ItemRecord, "lastError" | "lastOwnershipToken" | "availableAt">;

/**
 * The public view of an item record with the fields that change (its attempt, last error and token, and when it is
 * available) as given: the record's own, or as a snapshot captured them.
 */
export function pendingItemOf(r: ItemRecord, attempt: number, rare: RareItemFields): ResourceLeasePendingItem {
  const out: {
    payload: ResourceLeaseItemPayload;
    sequenceId: number;
    attempt: number;
    enqueuedAt: number;
    lastError?: ResourceLeaseErrorInfo;
    lastOwnershipToken?: ResourceLeaseOwnershipToken;
    availableAt?: number;
  } = { payload: payloadOf(r), sequenceId: r.sequenceId, attempt, enqueuedAt: r.enqueuedAt };
  if (rare.lastError) out.lastError = rare.lastError;
  if (rare.lastOwnershipToken) out.lastOwnershipToken = rare.lastOwnershipToken;
  if (rare.availableAt !== undefined) out.availableAt = rare.availableAt;
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
