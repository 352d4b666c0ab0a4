import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeasePendingItem,
  ResourceLeaseQueueSnapshot,
} from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotList } from "@omnirelay/core/replication";
import { decodeSchedule, encodeSchedule } from "@omnirelay/core/wire";
import { ByteReader, ByteWriter, MalformedError } from "./binary.js";
import { readItem, readToken, writeItem, writeToken } from "./event-codec.js";

// The binary form of a snapshot part (snapshot head version 3): the entries of the part in sections, each a list kind,
// a count and that many entries, written with the event codec's item and token forms (bodies as raw bytes). A part
// holds at most SNAPSHOT_PART_ENTRIES entries; the lists follow each other in the order below, so a list may be split
// over several parts and a part may hold the end of one list and the start of the next.
//
//   u8 format (2) · (u8 kind · varint n · entry × n)*
//
//   pending, delayed: item
//   active:           item · token · u8 flags (peerId, principal) · [str peerId] [str principal] · f64 leaseExpiresAt
//   deadLetters:      item · f64 deadLetteredAt · str reason
//   requestIds:       str requestId · f64 sequenceId · f64 expiresAt
//   reusableIds:      f64 first · f64 last
//   schedules:        str JSON {schedule (core's wire JSON of a schedule), upsertedAt, firedThrough, lastSlotAt?}
//   cancelledLeases:  str leaseId · f64 sequenceId · f64 fencingToken · f64 expiresAt
//   dispatchKeys:     str key · f64 pass · f64 windowStart · f64 windowGrants · f64 blockedUntil
//
// The last three kinds (6, 7, 8) are written only when the lists are not empty, so a snapshot without schedules,
// cancelled leases or per-key dispatch state is byte-for-byte what earlier versions wrote; a reader without them
// refuses one with them. The dispatch state's virtual time is in the head (`vtime`).

/** First byte of every binary snapshot part. Internal. */
export const SNAPSHOT_PART_FORMAT = 2;

type ActiveLease = ResourceLeaseQueueSnapshot["active"][number];
type ScheduleEntry = NonNullable<ResourceLeaseQueueSnapshot["schedules"]>[number];
type CancelledLease = readonly [string, number, number, number];
type DispatchKey = NonNullable<ResourceLeaseQueueSnapshot["dispatch"]>["keys"][number];
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The lists of a snapshot, as one part or all parts together hold them. Internal. */
export interface SnapshotLists {
  pending: ResourceLeasePendingItem[];
  delayed: ResourceLeasePendingItem[];
  active: ActiveLease[];
  deadLetters: ResourceLeaseDeadLetterItem[];
  requestIds: Array<readonly [string, number, number]>;
  reusableIds: Array<readonly [number, number]>;
  schedules: ScheduleEntry[];
  cancelledLeases: CancelledLease[];
  dispatchKeys: DispatchKey[];
}

const KINDS = [
  "pending",
  "delayed",
  "active",
  "deadLetters",
  "requestIds",
  "reusableIds",
  "schedules",
  "cancelledLeases",
  "dispatchKeys",
] as const;
const REASONS = new Set<string>(["failed", "max_attempts", "expired"]);

const writer = new ByteWriter(1 << 20);

function writeEntry(w: ByteWriter, kind: (typeof KINDS)[number], entry: unknown): void {
  switch (kind) {
    case "pending":
    case "delayed":
      writeItem(w, entry as ResourceLeasePendingItem);
      return;
    case "active": {
      const a = entry as ActiveLease;
      writeItem(w, a.item);
      writeToken(w, a.token);
      w.u8((a.peerId !== undefined ? 1 : 0) | (a.principal !== undefined ? 2 : 0));
      if (a.peerId !== undefined) w.str(a.peerId);
      if (a.principal !== undefined) w.str(a.principal);
      w.f64(a.leaseExpiresAt);
      return;
    }
    case "deadLetters": {
      const d = entry as ResourceLeaseDeadLetterItem;
      writeItem(w, d);
      w.f64(d.deadLetteredAt);
      w.str(d.reason);
      return;
    }
    case "requestIds": {
      const [id, sequenceId, expiresAt] = entry as readonly [string, number, number];
      w.str(id);
      w.f64(sequenceId);
      w.f64(expiresAt);
      return;
    }
    case "reusableIds": {
      const [first, last] = entry as readonly [number, number];
      w.f64(first);
      w.f64(last);
      return;
    }
    case "schedules": {
      const e = entry as ScheduleEntry;
      w.str(JSON.stringify({ ...e, schedule: encodeSchedule(e.schedule) }));
      return;
    }
    case "cancelledLeases": {
      const [leaseId, sequenceId, fencingToken, expiresAt] = entry as CancelledLease;
      w.str(leaseId);
      w.f64(sequenceId);
      w.f64(fencingToken);
      w.f64(expiresAt);
      return;
    }
    case "dispatchKeys": {
      const [key, pass, windowStart, windowGrants, blockedUntil] = entry as DispatchKey;
      w.str(key);
      w.f64(pass);
      w.f64(windowStart);
      w.f64(windowGrants);
      w.f64(blockedUntil);
    }
  }
}

/**
 * Encodes a snapshot's lists as binary parts of at most `perPart` entries each (fresh buffers), one part per step, so a
 * caller can write a large snapshot over several turns of the event loop. Internal.
 */
export function* snapshotParts(snapshot: ResourceLeaseQueueSnapshotView, perPart: number): Generator<Buffer> {
  const w = writer;
  let started = false;
  let room = 0;
  for (const [k, kind] of KINDS.entries()) {
    const list: ResourceLeaseSnapshotList<unknown> =
      (kind === "dispatchKeys" ? snapshot.dispatch?.keys : snapshot[kind]) ?? [];
    let at = 0;
    while (at < list.length) {
      if (room === 0) {
        if (started) yield w.take();
        w.reset();
        w.u8(SNAPSHOT_PART_FORMAT);
        room = perPart;
        started = true;
      }
      const n = Math.min(room, list.length - at);
      w.u8(k);
      w.varint(n);
      for (let i = at; i < at + n; i++) writeEntry(w, kind, list.at(i));
      at += n;
      room -= n;
    }
  }
  if (started) yield w.take(); // a snapshot without entries has no parts
}

function readEntry(r: ByteReader, kind: (typeof KINDS)[number], into: SnapshotLists): void {
  switch (kind) {
    case "pending":
    case "delayed":
      into[kind].push(readItem(r));
      return;
    case "active": {
      const item = readItem(r);
      const token = readToken(r);
      const flags = r.u8();
      const a: Mutable<ActiveLease> = { item, token, leaseExpiresAt: 0 };
      if (flags & 1) a.peerId = r.str();
      if (flags & 2) a.principal = r.str();
      a.leaseExpiresAt = r.time();
      into.active.push(a);
      return;
    }
    case "deadLetters": {
      const item = readItem(r);
      const deadLetteredAt = r.time();
      const reason = r.str();
      if (!REASONS.has(reason)) throw new MalformedError(`bad dead-letter reason ${reason}`);
      into.deadLetters.push({ ...item, deadLetteredAt, reason: reason as ResourceLeaseDeadLetterItem["reason"] });
      return;
    }
    case "requestIds": {
      const id = r.str();
      into.requestIds.push([id, r.int(0), r.time()]);
      return;
    }
    case "reusableIds":
      into.reusableIds.push([r.int(0), r.int(0)]);
      return;
    case "schedules":
      into.schedules.push(readSchedule(r.str()));
      return;
    case "cancelledLeases": {
      const leaseId = r.required();
      into.cancelledLeases.push([leaseId, r.int(1), r.int(1), r.time()]);
      return;
    }
    case "dispatchKeys": {
      const key = r.str();
      const entry = [key, r.f64(), r.f64(), r.f64(), r.f64()] as const;
      if (!entry.slice(1).every(Number.isFinite) || !Number.isSafeInteger(entry[3]) || entry[3] < 0) {
        throw new MalformedError("bad per-key dispatch state in a snapshot");
      }
      into.dispatchKeys.push(entry);
    }
  }
}

function readSchedule(text: string): ScheduleEntry {
  const e = JSON.parse(text) as {
    schedule?: unknown;
    upsertedAt?: unknown;
    firedThrough?: unknown;
    lastSlotAt?: unknown;
  };
  const times = [e.upsertedAt, e.firedThrough, ...(e.lastSlotAt === undefined ? [] : [e.lastSlotAt])];
  if (!times.every((t) => Number.isSafeInteger(t))) throw new MalformedError("bad schedule times in a snapshot");
  return {
    schedule: decodeSchedule(e.schedule),
    upsertedAt: e.upsertedAt as number,
    firedThrough: e.firedThrough as number,
    ...(e.lastSlotAt !== undefined ? { lastSlotAt: e.lastSlotAt as number } : {}),
  };
}

/** An empty set of lists. Internal. */
export function emptyLists(): SnapshotLists {
  return {
    pending: [],
    delayed: [],
    active: [],
    deadLetters: [],
    requestIds: [],
    reusableIds: [],
    schedules: [],
    cancelledLeases: [],
    dispatchKeys: [],
  };
}

/**
 * Decodes one binary part into `into` (appending), checking its structure: known list kinds in order, every entry
 * whole, nothing left over. Internal.
 * @throws MalformedError (or RangeError) for bytes that do not decode.
 */
export function decodeSnapshotPart(data: Uint8Array, into: SnapshotLists): void {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // The bodies stay in the part (a blob read for this decode alone, mostly bodies): a copy of each cost ~1.3 µs per
  // item at restart. The queue copies them out once they pin more than twice their bytes (core's compactBodies).
  const r = new ByteReader(buf, true);
  if (r.u8() !== SNAPSHOT_PART_FORMAT) throw new MalformedError("unknown snapshot part format");
  let last = -1;
  while (r.at < buf.length) {
    const k = r.u8();
    const kind = KINDS[k];
    if (kind === undefined || k < last) throw new MalformedError("bad list kind in a snapshot part");
    last = k;
    const n = r.varint();
    for (let i = 0; i < n; i++) readEntry(r, kind, into);
  }
}
