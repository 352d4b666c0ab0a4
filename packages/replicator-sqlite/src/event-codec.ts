import {
  type ResourceLeaseErrorInfo,
  ResourceLeaseEventTypes,
  type ResourceLeaseItemPayload,
  type ResourceLeaseOwnershipToken,
  type ResourceLeasePendingItem,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { eventTypeFromNumber } from "@omnirelay/core/wire";
import { ByteReader, ByteWriter, MalformedError } from "./binary.js";

// The binary form of a replication event, the row format of schema versions 4 to 6 (5 adds the payload's notBefore
// and priority, each behind a payload flag bit a version 4 row never sets, so version 4 rows read unchanged; 6 adds
// format 2, format 1 followed by the event's previousHash, so older rows read unchanged): the envelope's fields in a fixed order,
// each optional one announced by a flag bit, bodies as raw bytes (no base64), numbers as float64 (no ISO-8601 text).
// It holds exactly what the JSON envelope holds, so either form round-trips to the same event. The fixed head (the
// first 35 bytes) holds the numbers a repair must continue above, so a scan of a damaged file's pages reads them
// without decoding the rest (see page-scan.ts); the decoder checks the head against the fields.
//
//   u8 format (1, or 2 with previousHash) · u8 event type number · f64 sequenceNumber · f64 timestamp ·
//   f64 fencing token (the ownership's, 0 without one) · f64 highest item sequence id the event names (0 if none) ·
//   u8 flags · [ownership] [peerId] [principal] [payload] [error] [item] [items: varint n, item × n] [leaseExpiresAt]
//   metadata: varint n, (key, value) × n · [str previousHash: format 2]
//
// token: f64 sequenceId, f64 attempt, str leaseId, f64 fencingToken
// payload: u8 flags (body, attributes, requestId, notBefore, priority) ·
//          str resourceType, resourceId, partitionKey, payloadEncoding ·
//          [body] [attributes] [requestId] [f64 notBefore] [f64 priority]
// error: u8 flags (code) · str message · [code]
// item: u8 flags (lastError, lastOwnershipToken, availableAt) · payload · f64 sequenceId, attempt, enqueuedAt ·
//       [lastError] [lastOwnershipToken] [availableAt]

/** First byte of a binary event without `previousHash`. Internal. */
export const EVENT_FORMAT = 1;
/**
 * First byte of a binary event with `previousHash` (schema version 6): format 1's layout, then `str previousHash`
 * after the metadata. Internal.
 */
export const EVENT_FORMAT_CHAINED = 2;

const E_OWNERSHIP = 1;
const E_PEER = 2;
const E_PRINCIPAL = 4;
const E_PAYLOAD = 8;
const E_ERROR = 16;
const E_ITEM = 32;
const E_ITEMS = 64;
const E_LEASE_EXPIRES = 128;

const P_BODY = 1;
const P_ATTRIBUTES = 2;
const P_REQUEST_ID = 4;
const P_NOT_BEFORE = 8;
const P_PRIORITY = 16;
const P_KNOWN = P_BODY | P_ATTRIBUTES | P_REQUEST_ID | P_NOT_BEFORE | P_PRIORITY;
/** The int32 range of a priority, held in a log as on the wire. */
const PRIORITY_MIN = -(2 ** 31);
const PRIORITY_MAX = 2 ** 31 - 1;

const I_LAST_ERROR = 1;
const I_LAST_TOKEN = 2;
const I_AVAILABLE_AT = 4;

const writer = new ByteWriter();

/** Encodes an event in its binary form (a fresh buffer). Internal. */
export function encodeEventBinary(event: ResourceLeaseReplicationEvent): Buffer {
  const w = writer;
  w.reset();
  w.u8(event.previousHash !== undefined ? EVENT_FORMAT_CHAINED : EVENT_FORMAT);
  w.u8(ResourceLeaseEventTypes[event.eventType]);
  w.f64(event.sequenceNumber);
  w.f64(event.timestamp);
  w.f64(event.ownership?.fencingToken ?? 0);
  w.f64(highestSequenceId(event));
  const flags =
    (event.ownership ? E_OWNERSHIP : 0) |
    (event.peerId !== undefined ? E_PEER : 0) |
    (event.principal !== undefined ? E_PRINCIPAL : 0) |
    (event.payload ? E_PAYLOAD : 0) |
    (event.error ? E_ERROR : 0) |
    (event.item ? E_ITEM : 0) |
    (event.items ? E_ITEMS : 0) |
    (event.leaseExpiresAt !== undefined ? E_LEASE_EXPIRES : 0);
  w.u8(flags);
  if (event.ownership) writeToken(w, event.ownership);
  if (event.peerId !== undefined) w.str(event.peerId);
  if (event.principal !== undefined) w.str(event.principal);
  if (event.payload) writePayload(w, event.payload);
  if (event.error) writeError(w, event.error);
  if (event.item) writeItem(w, event.item);
  if (event.items) {
    w.varint(event.items.length);
    for (const item of event.items) writeItem(w, item);
  }
  if (event.leaseExpiresAt !== undefined) w.f64(event.leaseExpiresAt);
  w.map(event.metadata ?? {});
  if (event.previousHash !== undefined) w.str(event.previousHash);
  return w.take();
}

/** The highest item sequence id an event names (its ownership's, its item's, its items'), 0 when none. Internal. */
export function highestSequenceId(event: ResourceLeaseReplicationEvent): number {
  let max = event.ownership?.sequenceId ?? 0;
  if (event.item && event.item.sequenceId > max) max = event.item.sequenceId;
  if (event.items) for (const i of event.items) if (i.sequenceId > max) max = i.sequenceId;
  return max;
}

/** Writes an ownership token. Internal. */
export function writeToken(w: ByteWriter, t: ResourceLeaseOwnershipToken): void {
  w.f64(t.sequenceId);
  w.f64(t.attempt);
  w.str(t.leaseId);
  w.f64(t.fencingToken);
}

function writePayload(w: ByteWriter, p: ResourceLeaseItemPayload): void {
  w.u8(
    (p.body !== undefined ? P_BODY : 0) |
      (p.attributes !== undefined ? P_ATTRIBUTES : 0) |
      (p.requestId !== undefined ? P_REQUEST_ID : 0) |
      (p.notBefore !== undefined ? P_NOT_BEFORE : 0) |
      (p.priority !== undefined ? P_PRIORITY : 0),
  );
  w.str(p.resourceType);
  w.str(p.resourceId);
  w.str(p.partitionKey);
  w.str(p.payloadEncoding);
  if (p.body !== undefined) w.bytes(p.body);
  if (p.attributes !== undefined) w.map(p.attributes);
  if (p.requestId !== undefined) w.str(p.requestId);
  if (p.notBefore !== undefined) w.f64(p.notBefore);
  if (p.priority !== undefined) w.f64(p.priority);
}

function writeError(w: ByteWriter, e: ResourceLeaseErrorInfo): void {
  w.u8(e.code !== undefined ? 1 : 0);
  w.str(e.message ?? "");
  if (e.code !== undefined) w.str(e.code);
}

/** Writes a pending item. Internal. */
export function writeItem(w: ByteWriter, item: ResourceLeasePendingItem): void {
  w.u8(
    (item.lastError ? I_LAST_ERROR : 0) |
      (item.lastOwnershipToken ? I_LAST_TOKEN : 0) |
      (item.availableAt !== undefined ? I_AVAILABLE_AT : 0),
  );
  writePayload(w, item.payload);
  w.f64(item.sequenceId);
  w.f64(item.attempt);
  w.f64(item.enqueuedAt);
  if (item.lastError) writeError(w, item.lastError);
  if (item.lastOwnershipToken) writeToken(w, item.lastOwnershipToken);
  if (item.availableAt !== undefined) w.f64(item.availableAt);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes and checks (structure, as the wire's log mode: required fields present, integers safe and in range, times
 * in range, required text not blank, nothing left over) a binary event. Internal.
 * @throws MalformedError (or RangeError) for bytes that do not decode.
 */
export function decodeEventBinary(data: Buffer): ResourceLeaseReplicationEvent {
  const r = new ByteReader(data);
  const format = r.u8();
  if (format !== EVENT_FORMAT && format !== EVENT_FORMAT_CHAINED) throw new MalformedError("unknown event format");
  const eventType = eventTypeFromNumber(r.u8());
  if (eventType === undefined) throw new MalformedError("unknown event type");
  const sequenceNumber = r.int(1);
  const timestamp = r.time();
  const fencing = r.int(0);
  const sequenceId = r.int(0);
  const flags = r.u8();
  const event: Mutable<ResourceLeaseReplicationEvent> = { sequenceNumber, eventType, timestamp, metadata: {} };
  if (flags & E_OWNERSHIP) event.ownership = readToken(r);
  if (flags & E_PEER) event.peerId = r.str();
  if (flags & E_PRINCIPAL) event.principal = r.str();
  if (flags & E_PAYLOAD) event.payload = readPayload(r);
  if (flags & E_ERROR) event.error = readError(r);
  if (flags & E_ITEM) event.item = readItem(r);
  if (flags & E_ITEMS) {
    const n = r.varint();
    const items: ResourceLeasePendingItem[] = [];
    for (let i = 0; i < n; i++) items.push(readItem(r));
    event.items = items;
  }
  if (flags & E_LEASE_EXPIRES) event.leaseExpiresAt = r.time();
  event.metadata = r.map();
  if (format === EVENT_FORMAT_CHAINED) event.previousHash = r.required();
  r.end();
  if (fencing !== (event.ownership?.fencingToken ?? 0) || sequenceId !== highestSequenceId(event)) {
    throw new MalformedError("the head's numbers do not match the event");
  }
  return event;
}

/** Reads an ownership token. Internal. */
export function readToken(r: ByteReader): ResourceLeaseOwnershipToken {
  const sequenceId = r.int(1);
  const attempt = r.int(1);
  const leaseId = r.required();
  return { sequenceId, attempt, leaseId, fencingToken: r.int(1) };
}

function readPayload(r: ByteReader): ResourceLeaseItemPayload {
  const flags = r.u8();
  if (flags & ~P_KNOWN) throw new MalformedError("unknown payload flags");
  // Types, keys and encodings repeat from item to item: one string each, shared (see ByteReader.shared).
  const resourceType = r.required(true);
  const resourceId = r.required();
  const partitionKey = r.required(true);
  const payloadEncoding = r.required(true);
  // With its body in the literal: five fields in the object itself, not four and a property array for the body
  // (the queue keeps a million of these after a restart).
  const payload: Mutable<ResourceLeaseItemPayload> =
    flags & P_BODY
      ? { resourceType, resourceId, partitionKey, payloadEncoding, body: r.bytes() }
      : { resourceType, resourceId, partitionKey, payloadEncoding };
  if (flags & P_ATTRIBUTES) payload.attributes = r.map();
  if (flags & P_REQUEST_ID) {
    const requestId = r.str();
    // As the wire reads it: an empty request id is no request id.
    if (requestId.length > 0) payload.requestId = requestId;
  }
  if (flags & P_NOT_BEFORE) payload.notBefore = r.time();
  if (flags & P_PRIORITY) {
    const priority = r.int(PRIORITY_MIN);
    if (priority > PRIORITY_MAX) throw new MalformedError(`bad priority ${priority}`);
    payload.priority = priority;
  }
  return payload;
}

function readError(r: ByteReader): ResourceLeaseErrorInfo {
  const flags = r.u8();
  const message = r.str();
  return flags & 1 ? { message, code: r.str() } : { message };
}

/** Reads a pending item. Internal. */
export function readItem(r: ByteReader): ResourceLeasePendingItem {
  const flags = r.u8();
  const payload = readPayload(r);
  const item: Mutable<ResourceLeasePendingItem> = {
    payload,
    sequenceId: r.int(1),
    attempt: r.int(1),
    enqueuedAt: r.time(),
  };
  if (flags & I_LAST_ERROR) item.lastError = readError(r);
  if (flags & I_LAST_TOKEN) item.lastOwnershipToken = readToken(r);
  if (flags & I_AVAILABLE_AT) item.availableAt = r.time();
  return item;
}
