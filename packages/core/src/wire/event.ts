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
};

/**
 * The envelope of a replication event, the form every durable sink stores: camelCase, times ISO-8601, bytes base64,
 * `eventType` by name, absent fields omitted, `metadata` always present. Described once, read in log mode.
 */
export const ReplicationEvent = message<ResourceLeaseReplicationEvent>({
  sequenceNumber: f.int({ min: 1, required: ErrorCodes.replication.eventInvalid }),
  eventType,
  timestamp: f.time({ required: ErrorCodes.replication.eventInvalid }),
  ownership: OwnershipToken.field,
  peerId: f.text({ max: Number.MAX_SAFE_INTEGER }),
  principal: f.text({ max: Number.MAX_SAFE_INTEGER }),
  payload: Payload.field,
  error: ErrorInfo.field,
  item: PendingItem.field,
  items: f.list(PendingItem.field),
  leaseExpiresAt: f.time(),
  metadata: orElse(f.map(), {}),
});

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
