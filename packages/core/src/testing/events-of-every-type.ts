import {
  type ResourceLeaseEventType,
  ResourceLeaseEventTypes,
  type ResourceLeaseReplicationEvent,
} from "../contracts/events.js";
import type {
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { hashReplicationEvent } from "../wire/chain.js";

// Values at the edges of what the queue accepts (style item 19: accepted means storable): ids near 2^53, the first
// and last instant a log can write, every byte value, Unicode outside the BMP, NUL and newlines in strings.
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0, 123);
/** 9999-12-31T23:59:59.999Z, the latest time an item may carry. */
const LAST_TIME = 253_402_300_799_999;
const EVERY_BYTE = Uint8Array.from({ length: 256 }, (_, i) => i);

function payload(id: string): ResourceLeaseItemPayload {
  return {
    resourceType: "table.ü",
    resourceId: `${id}/日本/🙂`,
    partitionKey: "tenant-ß",
    payloadEncoding: "application/json; charset=utf-8",
    body: EVERY_BYTE,
    attributes: { tenant: "acme", "emoji-🙂": "✓", empty: "", "10": "a numeric-looking key", text: "a\nb\tc\u0000d" },
    requestId: `req-${id}-🙂`,
    // Scheduling at its edges: the last instant a log can write, the lowest int32.
    notBefore: LAST_TIME,
    priority: -(2 ** 31),
  };
}

function token(sequenceId: number): ResourceLeaseOwnershipToken {
  return {
    sequenceId,
    attempt: 2 ** 31 - 1,
    leaseId: "0b2c3d4e-aaaa-bbbb-cccc-1234567890ab",
    fencingToken: Number.MAX_SAFE_INTEGER,
  };
}

function item(sequenceId: number, extra: Partial<ResourceLeasePendingItem> = {}): ResourceLeasePendingItem {
  return {
    payload: payload(`r-${sequenceId}`),
    sequenceId,
    attempt: 3,
    enqueuedAt: 0,
    lastError: { message: "boom \n\u0000 ✗", code: "worker.crash" },
    lastOwnershipToken: token(sequenceId),
    availableAt: LAST_TIME,
    ...extra,
  };
}

const meta = (extra: Record<string, string> = {}) => ({ "queue.pending": "1", "queue.active": "0", ...extra });

type Body = Omit<ResourceLeaseReplicationEvent, "sequenceNumber" | "eventType">;

// One builder per event type: a type added to ResourceLeaseEventTypes without a builder here does not compile.
const builders: { readonly [K in ResourceLeaseEventType]: () => Body } = {
  Enqueue: () => ({ timestamp: 0, item: item(2 ** 52), peerId: "producer-ü", metadata: meta() }),
  LeaseGranted: () => ({
    timestamp: T0,
    ownership: token(2 ** 52),
    peerId: "worker-a",
    principal: "CN=worker-a,O=Ünïcode",
    leaseExpiresAt: LAST_TIME,
    payload: payload("r-granted"),
    error: { message: "previous failure" },
    metadata: meta({ "queue.active": "1" }),
  }),
  Heartbeat: () => ({
    timestamp: T0 + 1,
    ownership: token(7),
    peerId: "worker-a",
    leaseExpiresAt: T0 + 30_001,
    metadata: meta(),
  }),
  Completed: () => ({
    timestamp: T0 + 2,
    ownership: token(7),
    peerId: "worker-a",
    payload: payload("r-7"),
    metadata: meta(),
  }),
  Failed: () => ({
    timestamp: T0 + 3,
    ownership: token(7),
    peerId: "worker-a",
    payload: payload("r-7"),
    error: { message: "bad input", code: "app.invalid" },
    metadata: meta({ "failure.requeued": "true" }),
  }),
  DrainSnapshot: () => ({
    timestamp: T0 + 4,
    items: [item(5), item(6, { lastError: { message: "no code" }, availableAt: T0 })],
    metadata: meta({ "drain.count": "2" }),
  }),
  RestoreSnapshot: () => ({ timestamp: T0 + 5, items: [], metadata: meta({ "restore.count": "0" }) }),
  LeaseExpired: () => ({
    timestamp: T0 + 6,
    ownership: token(7),
    peerId: "worker-a",
    payload: payload("r-7"),
    metadata: meta(),
  }),
  Requeued: () => ({ timestamp: T0 + 7, item: item(7, { availableAt: T0 + 60_000 }), metadata: meta() }),
  DeadLettered: () => ({
    timestamp: T0 + 8,
    item: item(8),
    error: { message: "too many attempts" },
    metadata: meta({ "deadletter.reason": "max_attempts" }),
  }),
  Redriven: () => ({ timestamp: T0 + 9, item: item(8, { attempt: 1 }), metadata: meta() }),
  DeadLetterPurged: () => ({
    timestamp: LAST_TIME,
    item: item(9),
    metadata: meta({ "deadletter.purge_reason": "age" }),
  }),
  Cancelled: () => ({
    timestamp: T0 + 10,
    ownership: token(7),
    peerId: "worker-a",
    principal: "CN=operator",
    payload: payload("r-7"),
    metadata: meta({ "cancel.state": "active" }),
  }),
  ScheduleUpserted: () => {
    const { requestId: _none, ...template } = payload("r-scheduled");
    return {
      timestamp: T0 + 11,
      payload: template,
      metadata: meta({
        "schedule.id": "nightly.report",
        "schedule.cron": "30 2 * * *",
        "schedule.timezone": "Europe/Berlin",
        "schedule.backfill": "all",
        "schedule.backfill_window_ms": "604800000",
      }),
    };
  },
  ScheduleRemoved: () => ({ timestamp: T0 + 12, metadata: meta({ "schedule.id": "nightly.report" }) }),
  LeaseRefused: () => ({
    timestamp: T0 + 13,
    ownership: token(7),
    peerId: "worker-stale",
    principal: "CN=worker-stale",
    metadata: meta({ "refused.verb": "complete", "refused.code": ErrorCodes.resourceLease.leaseFenced }),
  }),
};

/**
 * One event of every type in `ResourceLeaseEventTypes`, in the order of their numbers, numbered from
 * `firstSequence` on. Each carries every field its type carries (see `ResourceLeaseReplicationEvent`), with values
 * at the edges of what the queue accepts: every byte value in bodies, Unicode (also outside the BMP), NUL and newlines
 * in strings, ids and fencing tokens near 2^53, empty attribute values, an empty item list, and times from the epoch to
 * 9999-12-31T23:59:59.999Z. Each links to the one before with `previousHash` (the first, when `firstSequence` is above 1,
 * to a predecessor outside the run). A log that stores these and reads them back deep-equal keeps every field. Fresh
 * objects on every call.
 * @param firstSequence - sequence number of the first event. @defaultValue 1
 */
export function eventsOfEveryType(firstSequence = 1): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (const [index, eventType] of (Object.keys(ResourceLeaseEventTypes) as ResourceLeaseEventType[]).entries()) {
    // Linked as a queue links them; the first of a run that does not start at 1 names a predecessor not in it.
    const before = out.at(-1);
    const previousHash = before ? hashReplicationEvent(before) : firstSequence > 1 ? UNSEEN_PREDECESSOR : undefined;
    out.push({
      sequenceNumber: firstSequence + index,
      eventType,
      ...builders[eventType](),
      ...(previousHash !== undefined ? { previousHash } : {}),
    });
  }
  return out;
}

/** The `previousHash` of a run's first event when its predecessor is not in the run. */
const UNSEEN_PREDECESSOR = "AAECAwQFBgcICQoLDA0ODw";
