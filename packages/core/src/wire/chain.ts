import { hash } from "node:crypto";
import { ResourceLeaseEventTypes, type ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "./messages.js";
import { writeShortText } from "./short-text.js";

// The hash chain of the event stream (docs/guides/operations.md, "Reconstitute a shard"). Every event carries `previousHash`, the
// hash of its predecessor's canonical bytes, so any copy of a stream (a SQLite log, the hub, an audit log in object
// storage, JetStream) can be checked link by link. The canonical bytes are one fixed binary layout, independent of
// how a sink stores the event: every field in a fixed order, absent optional text as empty text (so sinks that cannot
// tell "" from absent hash the same), optional numbers and messages behind a presence byte, maps sorted by key, bodies
// raw, numbers float64 little-endian, metadata without the keys replicators add in transit (`shard.id`,
// `replication.source`). `payload.delayMs` is not hashed: no event stores it.
//
//   u8 1 · u8 type number · f64 sequenceNumber · f64 timestamp · str previousHash · str peerId · str principal ·
//   u8 flags (ownership, payload, error, item, items, leaseExpiresAt) · [token] [payload] [error] [item]
//   [varint n, item × n] [f64 leaseExpiresAt] · map metadata
//
// The hash is the first 16 bytes of SHA-256 over those bytes, written base64url (22 characters).

/** Length of an event hash in bytes (16: 128 bits of SHA-256). */
export const EVENT_HASH_BYTES = 16;

const H_OWNERSHIP = 1;
const H_PAYLOAD = 2;
const H_ERROR = 4;
const H_ITEM = 8;
const H_ITEMS = 16;
const H_LEASE_EXPIRES = 32;

/** A reused, growing byte buffer: hashing an event allocates nothing but the digest. */
class CanonicalWriter {
  buf = Buffer.allocUnsafe(4096);
  at = 0;

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  u8(value: number): void {
    this.room(1);
    this.buf[this.at++] = value;
  }

  f64(value: number): void {
    this.room(8);
    this.buf.writeDoubleLE(value, this.at);
    this.at += 8;
  }

  varint(value: number): void {
    this.room(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.at++] = v;
  }

  str(value: string | undefined): void {
    if (value === undefined || value.length === 0) {
      this.u8(0);
      return;
    }
    if (value.length <= 42) {
      // At most 126 bytes, so its length is one varint byte: write the text, then its length before it.
      this.room(1 + value.length * 3);
      const n = writeShortText(this.buf, this.at + 1, value);
      this.buf[this.at] = n;
      this.at += 1 + n;
      return;
    }
    const n = Buffer.byteLength(value, "utf8");
    this.varint(n);
    this.room(n);
    this.at += this.buf.write(value, this.at, "utf8");
  }

  bytes(value: Uint8Array | undefined): void {
    const n = value?.byteLength ?? 0;
    this.varint(n);
    if (n === 0 || value === undefined) return;
    this.room(n);
    this.buf.set(value, this.at);
    this.at += n;
  }

  map(value: Readonly<Record<string, string>> | undefined): void {
    const keys = value ? Object.keys(value) : [];
    this.varint(keys.length);
    if (keys.length === 0 || value === undefined) return;
    if (keys.length > 1) sortKeys(keys);
    for (const key of keys) {
      this.str(key);
      this.str(value[key]);
    }
  }

  /** Event metadata: as {@link map}, without the keys replicators add in transit. */
  metadata(value: Readonly<Record<string, string>>): void {
    const keys = Object.keys(value);
    let count = keys.length;
    for (const key of keys) if (TRANSIT_KEYS.has(key)) count--;
    if (keys.length > 1) sortKeys(keys);
    this.varint(count);
    for (const key of keys) {
      if (count < keys.length && TRANSIT_KEYS.has(key)) continue;
      this.str(key);
      this.str(value[key]);
    }
  }

  optional(value: number | undefined): void {
    if (value === undefined) this.u8(0);
    else {
      this.u8(1);
      this.f64(value);
    }
  }
}

/**
 * Sorts keys as `Array.prototype.sort` does (by UTF-16 code units), in place: by insertion while there are few (an
 * event's metadata has a handful), which allocates nothing where `sort` copies the array on every call (a hashed event
 * is sorted once per event, on every commit).
 */
function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    for (; j >= 0 && (keys[j] as string) > key; j--) keys[j + 1] = keys[j] as string;
    keys[j + 1] = key;
  }
}

/**
 * Metadata keys a replicator adds to an event after the queue hashed it (a sharded replicator's `shard.id`, a hub
 * source's `replication.source`): not part of the hash, so every copy hashes as the queue did.
 */
const TRANSIT_KEYS: ReadonlySet<string> = new Set(["shard.id", "replication.source"]);

const writer = new CanonicalWriter();

function writeToken(w: CanonicalWriter, t: ResourceLeaseOwnershipToken): void {
  w.f64(t.sequenceId);
  w.f64(t.attempt);
  w.str(t.leaseId);
  w.f64(t.fencingToken);
}

function writePayload(w: CanonicalWriter, p: ResourceLeaseItemPayload): void {
  w.str(p.resourceType);
  w.str(p.resourceId);
  w.str(p.partitionKey);
  w.str(p.payloadEncoding);
  w.bytes(p.body);
  w.map(p.attributes);
  w.str(p.requestId);
  w.optional(p.notBefore);
  w.optional(p.priority);
}

function writeError(w: CanonicalWriter, e: ResourceLeaseErrorInfo | undefined): void {
  if (e === undefined) {
    w.u8(0);
    return;
  }
  w.u8(1);
  w.str(e.message);
  w.str(e.code);
}

function writeItem(w: CanonicalWriter, item: ResourceLeasePendingItem): void {
  writePayload(w, item.payload);
  w.f64(item.sequenceId);
  w.f64(item.attempt);
  w.f64(item.enqueuedAt);
  writeError(w, item.lastError);
  if (item.lastOwnershipToken) {
    w.u8(1);
    writeToken(w, item.lastOwnershipToken);
  } else w.u8(0);
  w.optional(item.availableAt);
}

/**
 * The canonical bytes of an event, the input of {@link hashReplicationEvent}. The view is of a reused buffer: valid
 * until the next call.
 */
export function canonicalEventBytes(event: ResourceLeaseReplicationEvent): Buffer {
  const w = writer;
  w.at = 0;
  w.u8(1);
  w.u8(ResourceLeaseEventTypes[event.eventType]);
  w.f64(event.sequenceNumber);
  w.f64(event.timestamp);
  w.str(event.previousHash);
  w.str(event.peerId);
  w.str(event.principal);
  w.u8(
    (event.ownership ? H_OWNERSHIP : 0) |
      (event.payload ? H_PAYLOAD : 0) |
      (event.error ? H_ERROR : 0) |
      (event.item ? H_ITEM : 0) |
      (event.items ? H_ITEMS : 0) |
      (event.leaseExpiresAt !== undefined ? H_LEASE_EXPIRES : 0),
  );
  if (event.ownership) writeToken(w, event.ownership);
  if (event.payload) writePayload(w, event.payload);
  if (event.error) writeError(w, event.error);
  if (event.item) writeItem(w, event.item);
  if (event.items) {
    w.varint(event.items.length);
    for (const item of event.items) writeItem(w, item);
  }
  if (event.leaseExpiresAt !== undefined) w.f64(event.leaseExpiresAt);
  w.metadata(event.metadata ?? {});
  return w.buf.subarray(0, w.at);
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE64URL_VALUE = new Uint8Array(128);
for (let i = 0; i < BASE64URL.length; i++) BASE64URL_VALUE[BASE64URL.charCodeAt(i)] = i;

/**
 * The hash of an event: the first {@link EVENT_HASH_BYTES} bytes of SHA-256 over its canonical bytes (which include
 * its own `previousHash`), base64url. Its successor carries it as `previousHash`. Equal for an event read back from
 * any sink (the SQLite log, the gRPC hub, object storage, JetStream).
 */
export function hashReplicationEvent(event: ResourceLeaseReplicationEvent): string {
  // The whole digest as base64url text, cut to 16 bytes' worth: half the time of a digest Buffer plus its toString
  // (the Buffer's allocation dominates). 21 characters carry bytes 0-15 but the last two bits of byte 15, which are the
  // top two bits of the 22nd character; its low four bits are byte 16's, which a 16-byte encoding writes as zeros.
  const full = hash("sha256", canonicalEventBytes(event), "base64url");
  return full.slice(0, 21) + BASE64URL[(BASE64URL_VALUE[full.charCodeAt(21)] as number) & 0x30];
}
