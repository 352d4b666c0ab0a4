import { ResourceLeaseErrorCodes as Codes } from "@omnirelay/core";
import type {
  DeadLetterItem,
  ErrorInfo,
  ItemPayload,
  LeaseGrant,
  OwnershipToken,
  PendingItem,
  QueueStats,
} from "../gen/omnirelay/resourcelease/v1/resourcelease.js";
import { type Json, type JsonReader, mapToJson, put } from "./json-reader.js";

// Proto ⇄ JSON DTO of the shared parts (payload, token, items, grants, stats). JSON → proto takes a JsonReader whose
// `fail` decides the error (invalid-argument for requests, internal for a procedure's response); the codes passed
// here are the ones core's HTTP decoder uses for the same field, so both transports report the same code.

const requiredPayloadCodes = {
  resourceType: Codes.resourceTypeRequired,
  resourceId: Codes.resourceIdRequired,
  partitionKey: Codes.partitionKeyRequired,
  payloadEncoding: Codes.encodingRequired,
} as const;

/** JSON payload → proto. Absent required strings become `""`, which the procedure rejects with its usual code. */
export function payloadFromJson(r: JsonReader, value: unknown, field: string): ItemPayload | undefined {
  const p = r.object(value, field, Codes.payloadInvalid);
  if (!p) return undefined;
  const text = (name: keyof typeof requiredPayloadCodes) =>
    r.str(r.get(p, name), `${field}.${name}`, requiredPayloadCodes[name]) ?? "";
  return {
    resourceType: text("resourceType"),
    resourceId: text("resourceId"),
    partitionKey: text("partitionKey"),
    payloadEncoding: text("payloadEncoding"),
    body: r.bytes(r.get(p, "body"), `${field}.body`, Codes.payloadInvalid),
    attributes: r.stringMap(r.get(p, "attributes"), `${field}.attributes`, Codes.payloadInvalid),
    requestId: r.str(r.get(p, "requestId"), `${field}.requestId`, Codes.payloadInvalid),
  };
}

/** Proto payload → JSON (body base64, empty attributes omitted). */
export function payloadToJson(p: ItemPayload): Json {
  const out: Json = {
    resourceType: p.resourceType,
    resourceId: p.resourceId,
    partitionKey: p.partitionKey,
    payloadEncoding: p.payloadEncoding,
  };
  if (p.body !== undefined)
    out.body = Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength).toString("base64");
  put(out, "attributes", mapToJson(p.attributes));
  put(out, "requestId", p.requestId);
  return out;
}

/** JSON ownership token → proto; integers may be decimal strings, as core accepts. */
export function tokenFromJson(r: JsonReader, value: unknown, field: string): OwnershipToken | undefined {
  const code = Codes.tokenRequired;
  const t = r.object(value, field, code);
  if (!t) return undefined;
  const int = (name: string) => r.int(r.get(t, name), `${field}.${name}`, code, true) ?? 0;
  return {
    sequenceId: int("sequenceId"),
    attempt: int("attempt"),
    leaseId: r.str(r.get(t, "leaseId"), `${field}.leaseId`, code) ?? "",
    fencingToken: int("fencingToken"),
  };
}

/** Proto ownership token → JSON. */
export function tokenToJson(t: OwnershipToken): Json {
  return { sequenceId: t.sequenceId, attempt: t.attempt, leaseId: t.leaseId, fencingToken: t.fencingToken };
}

/** JSON error info → proto. */
export function errorInfoFromJson(r: JsonReader, value: unknown, field: string): ErrorInfo | undefined {
  const e = r.object(value, field, Codes.argumentInvalid);
  if (!e) return undefined;
  return {
    message: r.str(r.get(e, "message"), `${field}.message`, Codes.argumentInvalid),
    code: r.str(r.get(e, "code"), `${field}.code`, Codes.argumentInvalid),
  };
}

/** Proto error info → JSON. */
export function errorInfoToJson(e: ErrorInfo): Json {
  const out: Json = {};
  put(out, "message", e.message);
  put(out, "code", e.code);
  return out;
}

// A dead-letter item has the fields of a pending item (same numbers) plus two.
function pendingFieldsFromJson(r: JsonReader, i: Json, field: string): PendingItem {
  const code = Codes.argumentInvalid;
  return {
    payload: payloadFromJson(r, r.get(i, "payload"), `${field}.payload`),
    sequenceId: r.int(r.get(i, "sequenceId"), `${field}.sequenceId`, code, true) ?? 0,
    attempt: r.int(r.get(i, "attempt"), `${field}.attempt`, code, true),
    enqueuedAt: r.time(r.get(i, "enqueuedAt"), `${field}.enqueuedAt`, code),
    lastError: errorInfoFromJson(r, r.get(i, "lastError"), `${field}.lastError`),
    lastOwnershipToken: tokenFromJson(r, r.get(i, "lastOwnershipToken"), `${field}.lastOwnershipToken`),
    availableAt: r.time(r.get(i, "availableAt"), `${field}.availableAt`, code),
  };
}

function pendingFieldsToJson(i: PendingItem): Json {
  const out: Json = {};
  put(out, "payload", i.payload && payloadToJson(i.payload));
  out.sequenceId = i.sequenceId;
  put(out, "attempt", i.attempt);
  put(out, "enqueuedAt", i.enqueuedAt);
  put(out, "lastError", i.lastError && errorInfoToJson(i.lastError));
  put(out, "lastOwnershipToken", i.lastOwnershipToken && tokenToJson(i.lastOwnershipToken));
  put(out, "availableAt", i.availableAt);
  return out;
}

/** JSON pending item (drain output, restore input) → proto. A missing item is `restore.pending_item_required`. */
export function pendingItemFromJson(r: JsonReader, value: unknown, field: string): PendingItem {
  const i = r.object(value, field, Codes.restoreItemRequired);
  if (!i) return r.fail(field, `${field} is required.`, Codes.restoreItemRequired);
  return pendingFieldsFromJson(r, i, field);
}

/** Proto pending item → JSON. */
export function pendingItemToJson(i: PendingItem): Json {
  return pendingFieldsToJson(i);
}

/** JSON dead-letter item → proto. */
export function deadLetterItemFromJson(r: JsonReader, value: unknown, field: string): DeadLetterItem {
  const code = Codes.argumentInvalid;
  const i = r.object(value, field, code);
  if (!i) return r.fail(field, `${field} is required.`, code);
  return {
    ...pendingFieldsFromJson(r, i, field),
    deadLetteredAt: r.time(r.get(i, "deadLetteredAt"), `${field}.deadLetteredAt`, code) ?? "",
    reason: r.str(r.get(i, "reason"), `${field}.reason`, code) ?? "",
  };
}

/** Proto dead-letter item → JSON. */
export function deadLetterItemToJson(i: DeadLetterItem): Json {
  return { ...pendingFieldsToJson(i), deadLetteredAt: i.deadLetteredAt, reason: i.reason };
}

/** JSON lease grant → proto. */
export function grantFromJson(r: JsonReader, value: unknown, field: string): LeaseGrant {
  const code = Codes.argumentInvalid;
  const g = r.object(value, field, code);
  if (!g) return r.fail(field, `${field} is required.`, code);
  return {
    payload: payloadFromJson(r, r.get(g, "payload"), `${field}.payload`),
    sequenceId: r.int(r.get(g, "sequenceId"), `${field}.sequenceId`, code) ?? 0,
    attempt: r.int(r.get(g, "attempt"), `${field}.attempt`, code) ?? 0,
    enqueuedAt: r.time(r.get(g, "enqueuedAt"), `${field}.enqueuedAt`, code) ?? "",
    lastError: errorInfoFromJson(r, r.get(g, "lastError"), `${field}.lastError`),
    ownershipToken: tokenFromJson(r, r.get(g, "ownershipToken"), `${field}.ownershipToken`),
    ownerPeerId: r.str(r.get(g, "ownerPeerId"), `${field}.ownerPeerId`, code),
    leaseExpiresAt: r.time(r.get(g, "leaseExpiresAt"), `${field}.leaseExpiresAt`, code) ?? "",
  };
}

/** Proto lease grant → JSON. */
export function grantToJson(g: LeaseGrant): Json {
  const out: Json = {};
  put(out, "payload", g.payload && payloadToJson(g.payload));
  out.sequenceId = g.sequenceId;
  out.attempt = g.attempt;
  out.enqueuedAt = g.enqueuedAt;
  put(out, "lastError", g.lastError && errorInfoToJson(g.lastError));
  put(out, "ownershipToken", g.ownershipToken && tokenToJson(g.ownershipToken));
  put(out, "ownerPeerId", g.ownerPeerId);
  out.leaseExpiresAt = g.leaseExpiresAt;
  return out;
}

const optionalStats = [
  "delayedCount",
  "deadLetterCount",
  "lastEventSequence",
  "lastFencingToken",
  "capacity",
  "bytesHeld",
  "maxBytes",
  "deadLetterBytes",
] as const;

/** JSON queue stats → proto. */
export function statsFromJson(r: JsonReader, value: unknown, field: string): QueueStats | undefined {
  const code = Codes.argumentInvalid;
  const s = r.object(value, field, code);
  if (!s) return undefined;
  const out: QueueStats = {
    pendingCount: r.int(r.get(s, "pendingCount"), `${field}.pendingCount`, code) ?? 0,
    activeLeaseCount: r.int(r.get(s, "activeLeaseCount"), `${field}.activeLeaseCount`, code) ?? 0,
    state: r.str(r.get(s, "state"), `${field}.state`, code),
  };
  for (const name of optionalStats) out[name] = r.int(r.get(s, name), `${field}.${name}`, code);
  return out;
}

/** Proto queue stats → JSON (the optional counters only when present). */
export function statsToJson(s: QueueStats): Json {
  const out: Json = { pendingCount: s.pendingCount, activeLeaseCount: s.activeLeaseCount };
  put(out, "delayedCount", s.delayedCount);
  put(out, "deadLetterCount", s.deadLetterCount);
  put(out, "state", s.state);
  put(out, "lastEventSequence", s.lastEventSequence);
  put(out, "lastFencingToken", s.lastFencingToken);
  put(out, "capacity", s.capacity);
  put(out, "bytesHeld", s.bytesHeld);
  put(out, "maxBytes", s.maxBytes);
  put(out, "deadLetterBytes", s.deadLetterBytes);
  return out;
}
