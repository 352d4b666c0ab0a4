import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseOwnershipToken,
  ResourceLeaseQueueSnapshot,
} from "@omnirelay/core";
import { decodePendingItem, encodePendingItem } from "@omnirelay/core/wire";

type ActiveLease = ResourceLeaseQueueSnapshot["active"][number];

/** Most entries (items of all kinds, request ids) in one part of a snapshot. Internal. */
export const SNAPSHOT_PART_ENTRIES = 5000;

/** A snapshot as stored: a small head and its parts, each JSON text of its own row. Internal. */
export interface EncodedSnapshot {
  readonly head: string;
  readonly parts: readonly string[];
}

interface PartJson {
  pending: unknown[];
  delayed: unknown[];
  active: SnapshotJson["active"];
  deadLetters: SnapshotJson["deadLetters"];
  requestIds: SnapshotJson["requestIds"];
  /** Reusable id ranges (absent in parts written before they were kept). */
  reusableIds: Array<[number, number]>;
}

/**
 * Encodes a queue snapshot as a head (counters, `version: 2`, the number of parts) and parts of at most
 * {@link SNAPSHOT_PART_ENTRIES} entries. One JSON text for the whole queue cannot hold a large one: V8 strings stop at
 * about 512 MiB, about a million 200-byte items. Items go through core's pending-item JSON (bodies as base64, times as
 * ISO-8601), so the text is portable and the round trip is exact. Internal.
 */
export function encodeSnapshot(snapshot: ResourceLeaseQueueSnapshot): EncodedSnapshot {
  const parts: string[] = [];
  let part: PartJson = emptyPart();
  let entries = 0;
  const add = <K extends keyof PartJson>(key: K, value: PartJson[K][number]) => {
    (part[key] as unknown[]).push(value);
    if (++entries === SNAPSHOT_PART_ENTRIES) {
      parts.push(JSON.stringify(part));
      part = emptyPart();
      entries = 0;
    }
  };
  for (const item of snapshot.pending) add("pending", encodePendingItem(item));
  for (const item of snapshot.delayed) add("delayed", encodePendingItem(item));
  for (const a of snapshot.active) {
    add("active", {
      item: encodePendingItem(a.item),
      token: a.token,
      ...(a.peerId !== undefined ? { peerId: a.peerId } : {}),
      ...(a.principal !== undefined ? { principal: a.principal } : {}),
      leaseExpiresAt: a.leaseExpiresAt,
    });
  }
  for (const d of snapshot.deadLetters) {
    add("deadLetters", { item: encodePendingItem(d), deadLetteredAt: d.deadLetteredAt, reason: d.reason });
  }
  for (const r of snapshot.requestIds) add("requestIds", [r[0], r[1], r[2]]);
  for (const [first, last] of snapshot.reusableIds ?? []) add("reusableIds", [first, last]);
  if (entries > 0) parts.push(JSON.stringify(part));
  const head = JSON.stringify({
    version: 2,
    lastEventSequence: snapshot.lastEventSequence,
    lastFencingToken: snapshot.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    mode: snapshot.mode,
    parts: parts.length,
  });
  return { head, parts };
}

function emptyPart(): PartJson {
  return { pending: [], delayed: [], active: [], deadLetters: [], requestIds: [], reusableIds: [] };
}

interface SnapshotJson {
  version: 1;
  lastEventSequence: number;
  lastFencingToken: number;
  lastSequenceId: number;
  mode: "running" | "draining";
  pending: unknown[];
  delayed: unknown[];
  active: Array<{
    item: unknown;
    token: ResourceLeaseOwnershipToken;
    peerId?: string;
    principal?: string;
    leaseExpiresAt: number;
  }>;
  deadLetters: Array<{ item: unknown; deadLetteredAt: number; reason: ResourceLeaseDeadLetterItem["reason"] }>;
  requestIds: Array<[string, number, number]>;
}

/**
 * Decodes a snapshot: a version 2 head with its parts (in order), or a version 1 text (one JSON, from earlier
 * versions) with none. Throws on anything malformed. Internal.
 */
export function decodeSnapshot(head: string, parts: readonly string[] = []): ResourceLeaseQueueSnapshot {
  const s = JSON.parse(head) as SnapshotJson | (Omit<SnapshotJson, "version"> & { version: 2; parts: number });
  if (s === null || typeof s !== "object" || !Number.isSafeInteger(s.lastEventSequence)) {
    throw new Error("not a queue snapshot");
  }
  let body: PartJson;
  if (s.version === 1) {
    if (parts.length !== 0) throw new Error("a version 1 snapshot has no parts");
    body = { ...s, reusableIds: [] };
  } else if (s.version === 2 && s.parts === parts.length) {
    body = emptyPart();
    for (const text of parts) {
      const p = JSON.parse(text) as PartJson;
      for (const key of ["pending", "delayed", "active", "deadLetters", "requestIds"] as const) {
        if (!Array.isArray(p[key])) throw new Error(`a snapshot part has no ${key} list`);
        for (const entry of p[key]) (body[key] as unknown[]).push(entry);
      }
      // Parts written before reusable ids were kept have no list.
      const ranges: unknown = (p as Partial<PartJson>).reusableIds ?? [];
      const isRange = (r: unknown) =>
        Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]);
      if (!Array.isArray(ranges) || !ranges.every(isRange)) throw new Error("a bad reusableIds list");
      body.reusableIds.push(...(ranges as Array<[number, number]>));
    }
  } else {
    throw new Error("not a version 1 or 2 queue snapshot, or parts are missing");
  }
  const active: ActiveLease[] = body.active.map((a) => {
    const out: { -readonly [K in keyof ActiveLease]: ActiveLease[K] } = {
      item: decodePendingItem(a.item),
      token: a.token,
      leaseExpiresAt: a.leaseExpiresAt,
    };
    if (a.peerId !== undefined) out.peerId = a.peerId;
    if (a.principal !== undefined) out.principal = a.principal;
    return out;
  });
  return {
    version: 1,
    lastEventSequence: s.lastEventSequence,
    lastFencingToken: s.lastFencingToken,
    lastSequenceId: s.lastSequenceId,
    mode: s.mode,
    pending: body.pending.map((p) => decodePendingItem(p)),
    delayed: body.delayed.map((p) => decodePendingItem(p)),
    active,
    deadLetters: body.deadLetters.map((d) => ({
      ...decodePendingItem(d.item),
      deadLetteredAt: d.deadLetteredAt,
      reason: d.reason,
    })),
    requestIds: body.requestIds.map(([id, seq, exp]) => [id, seq, exp] as const),
    reusableIds: body.reusableIds,
  };
}
