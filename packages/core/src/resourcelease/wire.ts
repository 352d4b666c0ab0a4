import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";
import { getPropertyIgnoreCase } from "../replication/case-insensitive.js";
import {
  absent,
  decodePayloadJson,
  decodeTokenJson,
  encodeErrorJson,
  encodePayloadJson,
  encodeTime,
  encodeTokenJson,
  JsonDecodeContext,
} from "../replication/json-parts.js";
import { decodePendingItem, encodePendingItem } from "../replication/pending-item-json.js";

// The JSON wire DTOs of the resourcelease procedures (docs/protocol.md). Input property names are matched
// case-insensitively; output is camelCase with absent fields omitted, times ISO-8601 and bytes base64.

const ctx = new JsonDecodeContext("item");

/** Reads a property of a request body, ignoring case. */
export function field(body: object, name: string): unknown {
  return getPropertyIgnoreCase(body, name);
}

function bad(name: string, message: string): never {
  throw omniError("invalid-argument", Codes.argumentInvalid, message, { field: name });
}

/** An optional integer field within [min, max]. */
export function optionalInt(body: object, name: string, min: number, max: number): number | undefined {
  const v = field(body, name);
  if (absent(v)) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    bad(name, `${name} must be an integer between ${min} and ${max}.`);
  }
  return v;
}

/** An optional string field. */
export function optionalStr(body: object, name: string): string | undefined {
  const v = field(body, name);
  if (absent(v)) return undefined;
  if (typeof v !== "string") bad(name, `${name} must be a string.`);
  return v;
}

/** An optional boolean field. */
export function optionalBool(body: object, name: string): boolean | undefined {
  const v = field(body, name);
  if (absent(v)) return undefined;
  if (typeof v !== "boolean") bad(name, `${name} must be true or false.`);
  return v;
}

/** An optional list field. */
export function optionalList(body: object, name: string): unknown[] | undefined {
  const v = field(body, name);
  if (absent(v)) return undefined;
  if (!Array.isArray(v)) bad(name, `${name} must be a list.`);
  return v;
}

/** An optional string→string map field. */
export function optionalStringMap(body: object, name: string): Record<string, string> | undefined {
  const v = field(body, name);
  if (absent(v)) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) bad(name, `${name} must be an object of strings.`);
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
    if (typeof s !== "string") bad(name, `${name}.${k} must be a string.`);
    out[k] = s;
  }
  return out;
}

/** `{payload}` or `{payloads:[…]}`. */
export function decodeEnqueue(body: object): { payloads: ResourceLeaseItemPayload[]; batch: boolean } {
  const list = optionalList(body, "payloads");
  if (list !== undefined) {
    if (list.length === 0) {
      throw omniError("invalid-argument", Codes.payloadRequired, "payloads must not be empty.", { field: "payloads" });
    }
    return { payloads: list.map((p, i) => decodePayloadJson(ctx, p, `payloads[${i}]`)), batch: true };
  }
  return { payloads: [decodePayloadJson(ctx, field(body, "payload"), "payload")], batch: false };
}

/** The token of heartbeat / complete / fail. */
export function decodeToken(value: unknown, name = "ownershipToken"): ResourceLeaseOwnershipToken {
  if (absent(value)) {
    throw omniError("invalid-argument", Codes.tokenRequired, `${name} is required.`, { field: name });
  }
  return decodeTokenJson(ctx, value, name);
}

/** Restore input items. */
export function decodeRestoreItems(body: object, now: number): ResourceLeasePendingItem[] {
  const list = optionalList(body, "items") ?? [];
  return list.map((item, i) => decodePendingItem(item, { field: `items[${i}]`, defaultEnqueuedAt: now }));
}

/** A grant on the wire. */
export function encodeGrant(g: ResourceLeaseGrant): Record<string, unknown> {
  const out: Record<string, unknown> = {
    payload: encodePayloadJson(g.payload),
    sequenceId: g.sequenceId,
    attempt: g.attempt,
    enqueuedAt: encodeTime(g.enqueuedAt),
    ownershipToken: encodeTokenJson(g.ownershipToken),
    leaseExpiresAt: encodeTime(g.leaseExpiresAt),
  };
  if (g.lastError) out.lastError = encodeErrorJson(g.lastError);
  if (g.ownerPeerId) out.ownerPeerId = g.ownerPeerId;
  return out;
}

/** Pending items on the wire (drain output). */
export function encodePendingItems(items: readonly ResourceLeasePendingItem[]): unknown[] {
  return items.map((i) => encodePendingItem(i));
}

/** Dead-letter items on the wire. */
export function encodeDeadLetters(items: readonly ResourceLeaseDeadLetterItem[]): unknown[] {
  return items.map((i) => ({
    ...encodePendingItem(i),
    deadLetteredAt: encodeTime(i.deadLetteredAt),
    reason: i.reason,
  }));
}

/** The full stats object of the `stats` procedure. */
export function encodeStats(s: ResourceLeaseQueueStats): Record<string, unknown> {
  return { ...s };
}
