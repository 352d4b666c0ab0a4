import {
  eventTypeFromNumber,
  type ResourceLeaseEventType,
  ResourceLeaseEventTypes,
  type ResourceLeaseReplicationEvent,
} from "../contracts/events.js";
import { getPropertyIgnoreCase } from "./case-insensitive.js";
import {
  absent,
  decodeErrorJson,
  decodePayloadJson,
  decodePendingItemJson,
  decodeStringMap,
  decodeTokenJson,
  encodeErrorJson,
  encodePayloadJson,
  encodePendingItemJson,
  encodeTime,
  encodeTokenJson,
  JsonDecodeContext,
  optionalString,
  requireInteger,
  requireObject,
  requireTime,
} from "./json-parts.js";
import type { ResourceLeaseReplicationEventJson } from "./json-types.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const typeByLowerName = new Map<string, ResourceLeaseEventType>(
  Object.keys(ResourceLeaseEventTypes).map((name) => [name.toLowerCase(), name as ResourceLeaseEventType]),
);

/**
 * Encodes a replication event as the JSON envelope durable sinks store (see {@link ResourceLeaseReplicationEventJson}).
 * The result is a plain object; `JSON.stringify` it to get the stored text.
 */
export function encodeReplicationEvent(event: ResourceLeaseReplicationEvent): ResourceLeaseReplicationEventJson {
  const out: Mutable<Omit<ResourceLeaseReplicationEventJson, "metadata">> = {
    sequenceNumber: event.sequenceNumber,
    eventType: event.eventType,
    timestamp: encodeTime(event.timestamp),
  };
  if (event.ownership !== undefined) out.ownership = encodeTokenJson(event.ownership);
  if (event.peerId !== undefined) out.peerId = event.peerId;
  if (event.principal !== undefined) out.principal = event.principal;
  if (event.payload !== undefined) out.payload = encodePayloadJson(event.payload);
  if (event.error !== undefined) out.error = encodeErrorJson(event.error);
  if (event.item !== undefined) out.item = encodePendingItemJson(event.item);
  if (event.items !== undefined) out.items = event.items.map(encodePendingItemJson);
  if (event.leaseExpiresAt !== undefined) out.leaseExpiresAt = encodeTime(event.leaseExpiresAt);
  return { ...out, metadata: { ...event.metadata } };
}

function decodeEventType(ctx: JsonDecodeContext, value: unknown): ResourceLeaseEventType {
  if (typeof value === "number") {
    const type = eventTypeFromNumber(value);
    if (type !== undefined) return type;
  } else if (typeof value === "string") {
    const trimmed = value.trim();
    const type = /^\d+$/.test(trimmed)
      ? eventTypeFromNumber(Number(trimmed))
      : typeByLowerName.get(trimmed.toLowerCase());
    if (type !== undefined) return type;
  }
  return ctx.fail("eventType", `eventType must be an event type name or number, got ${JSON.stringify(value)}.`);
}

/**
 * Decodes and validates a replication event envelope (parsed JSON). Property names match case-insensitively;
 * `eventType` may be its name or its stable number; timestamps are ISO-8601 (ms numbers are accepted too);
 * a missing `metadata` is read as empty.
 *
 * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid`, metadata `field` naming the bad field
 *   (e.g. `items[2].payload.resourceId`).
 */
export function decodeReplicationEvent(json: unknown): ResourceLeaseReplicationEvent {
  const ctx = new JsonDecodeContext("event");
  const e = requireObject(ctx, json, "event");
  const get = (name: string) => getPropertyIgnoreCase(e, name);
  const sequenceNumber = requireInteger(ctx, get("sequenceNumber"), "sequenceNumber", 1);
  const eventType = decodeEventType(ctx, get("eventType"));
  const timestamp = requireTime(ctx, get("timestamp"), "timestamp");
  const rawMetadata = get("metadata");
  const metadata = absent(rawMetadata) ? {} : decodeStringMap(ctx, rawMetadata, "metadata");
  const out: Mutable<ResourceLeaseReplicationEvent> = { sequenceNumber, eventType, timestamp, metadata };
  const ownership = get("ownership");
  if (!absent(ownership)) out.ownership = decodeTokenJson(ctx, ownership, "ownership");
  const peerId = optionalString(ctx, get("peerId"), "peerId");
  if (peerId !== undefined) out.peerId = peerId;
  const principal = optionalString(ctx, get("principal"), "principal");
  if (principal !== undefined) out.principal = principal;
  const payload = get("payload");
  if (!absent(payload)) out.payload = decodePayloadJson(ctx, payload, "payload");
  const error = get("error");
  if (!absent(error)) out.error = decodeErrorJson(ctx, error, "error");
  const item = get("item");
  if (!absent(item)) out.item = decodePendingItemJson(ctx, item, "item");
  const items = get("items");
  if (!absent(items)) {
    const list: unknown[] = Array.isArray(items) ? items : ctx.fail("items", "items must be an array.");
    out.items = list.map((entry, index) => decodePendingItemJson(ctx, entry, `items[${index}]`));
  }
  const leaseExpiresAt = get("leaseExpiresAt");
  if (!absent(leaseExpiresAt)) out.leaseExpiresAt = requireTime(ctx, leaseExpiresAt, "leaseExpiresAt");
  return out;
}
