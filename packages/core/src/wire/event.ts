import {
  eventTypeFromNumber,
  type ResourceLeaseEventType,
  ResourceLeaseEventTypes,
  type ResourceLeaseReplicationEvent,
} from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { type Field, f, message, orElse } from "./message.js";
import { ErrorInfo, OwnershipToken, Payload, PendingItem } from "./messages.js";
import { fail, logSite } from "./site.js";
import { absent } from "./values.js";

const typeByLowerName = new Map<string, ResourceLeaseEventType>(
  Object.keys(ResourceLeaseEventTypes).map((name) => [name.toLowerCase(), name as ResourceLeaseEventType]),
);

/** An event type: its name (any case) or its stable number (also as a decimal string); written as its name. */
const eventType: Field<ResourceLeaseEventType> = {
  read: (value, site) => {
    let type: ResourceLeaseEventType | undefined;
    if (typeof value === "number") type = eventTypeFromNumber(value);
    else if (typeof value === "string") {
      const trimmed = value.trim();
      type = /^\d+$/.test(trimmed) ? eventTypeFromNumber(Number(trimmed)) : typeByLowerName.get(trimmed.toLowerCase());
    }
    if (type === undefined) {
      fail(
        site,
        ErrorCodes.replication.eventInvalid,
        `eventType must be an event type name or number, got ${absent(value) ? value : JSON.stringify(value)}.`,
      );
    }
    return type;
  },
  write: (value) => value,
  schema: () => ({
    type: "string",
    enum: Object.keys(ResourceLeaseEventTypes),
    description: `Stable numbers 1..${Object.keys(ResourceLeaseEventTypes).length} in that order (used by SQLite and protobuf).`,
  }),
  always: true,
};

/** What {@link hashReplicationEvent} writes: 16 bytes, base64url without padding. */
const HASH_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const hashText = f.text({
  max: 64,
  emptyIsAbsent: true,
  doc: "Hash of the predecessor event (16 bytes of SHA-256 over its canonical bytes, base64url: 22 characters); absent on a queue's first event and in logs older than the hash chain.",
});

/**
 * The predecessor's hash: absent, or exactly what a hash is, in every mode. A blank or malformed one is refused where
 * it is read (a hub's publish, a log's event) instead of being stored for a reader to trip over later: the binary log
 * requires a hash it holds to be non-blank, so a hub that took `" "` could not reopen that source's log.
 */
const previousHash: Field<string> = {
  read: (value, site) => {
    const text = hashText.read(value, site);
    if (text !== undefined && !HASH_PATTERN.test(text)) {
      fail(site, ErrorCodes.replication.eventInvalid, `${site.path} must be an event hash (22 base64url characters).`);
    }
    return text;
  },
  write: hashText.write,
  schema: (definitions) => ({ ...hashText.schema(definitions), pattern: HASH_PATTERN.source }),
};

/**
 * The envelope of a replication event, the form every durable sink stores: camelCase, times ISO-8601, bytes base64,
 * `eventType` by name, absent fields omitted, `metadata` always present. Described once, read in log mode.
 */
export const ReplicationEvent = message<ResourceLeaseReplicationEvent>({
  sequenceNumber: f.int({
    min: 1,
    required: ErrorCodes.replication.eventInvalid,
    doc: "Assigned by the queue in mutation order; a log continues at exactly the last + 1.",
  }),
  eventType,
  timestamp: f.time({ required: ErrorCodes.replication.eventInvalid, doc: "When the mutation happened." }),
  ownership: OwnershipToken.field,
  peerId: f.text({ max: Number.MAX_SAFE_INTEGER, doc: "The peer that owns or acted on the lease." }),
  principal: f.text({ max: Number.MAX_SAFE_INTEGER, doc: "Authenticated principal of the caller. Never a raw token." }),
  payload: Payload.field,
  error: ErrorInfo.field,
  item: PendingItem.field,
  items: f.list(PendingItem.field),
  leaseExpiresAt: f.time({ doc: "Lease deadline after LeaseGranted or Heartbeat." }),
  metadata: orElse(
    f.map(
      undefined,
      "queue.pending, queue.active, shard.id (sharded replicators), failure.requeued, drain.count, restore.count, deadletter.reason, deadletter.purge_reason, cancel.state, schedule.id, schedule.cron, schedule.timezone, schedule.backfill, schedule.backfill_window_ms, schedule.slot, ...",
    ),
    {},
  ),
  previousHash,
});

/**
 * The JSON Schema (draft-07) of the replication event envelope, generated from the event's description: what every
 * durable sink stores, for governance tools that validate it. `@omnirelay/replicator-object-storage` ships it as
 * `schema/replication-event.v1.json`.
 */
export function replicationEventJsonSchema(): Record<string, unknown> {
  const definitions: Record<string, Record<string, unknown>> = {};
  const root = ReplicationEvent.schema(definitions);
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: "https://omnirelay.dev/schema/replication-event.v1.json",
    title: "OmniRelay ResourceLease replication event envelope, version 1",
    description:
      "The JSON form of one ResourceLeaseReplicationEvent, as written by encodeReplicationEvent (@omnirelay/core/wire) and stored by every durable sink: one object per event (one line per event in object-storage segments). camelCase, times ISO-8601 UTC, bytes base64, eventType by name, absent fields omitted. Generated from the event's description in @omnirelay/core's wire layer. Readers (decodeReplicationEvent) are more lenient: property names match case-insensitively, eventType may be its number, times may be ms numbers.",
    ...root,
    definitions,
  };
}

/**
 * Encodes a replication event as the JSON envelope durable sinks store. The result is a plain object;
 * `JSON.stringify` it to get the stored text.
 */
export function encodeReplicationEvent(event: ResourceLeaseReplicationEvent): Record<string, unknown> {
  const out = ReplicationEvent.write(event);
  if (out.metadata === undefined) out.metadata = {};
  return out;
}

/**
 * Decodes and validates a replication event envelope (parsed JSON). Property names match case-insensitively;
 * `eventType` may be its name or its stable number; timestamps are ISO-8601 (ms numbers are accepted too); a missing
 * `metadata` is read as empty.
 * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid`, metadata `field` naming the bad
 *   field (e.g. `items[2].payload.resourceId`).
 */
export function decodeReplicationEvent(json: unknown): ResourceLeaseReplicationEvent {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(logSite("event"), ErrorCodes.replication.eventInvalid, "An event must be a JSON object.");
  }
  return ReplicationEvent.read(json, logSite());
}
