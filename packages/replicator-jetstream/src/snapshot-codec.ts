import type { ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotList } from "@omnirelay/core/replication";
import { decodePendingItem, decodeSchedule, encodePendingItem, encodeSchedule } from "@omnirelay/core/wire";

type ActiveLease = ResourceLeaseQueueSnapshot["active"][number];

/** The format of a stored snapshot's JSON. */
const FORMAT = "omnirelay-queue-snapshot/1";

/**
 * Encodes a queue snapshot as one JSON text. Items go through core's pending-item JSON (bodies base64, times
 * ISO-8601), so the round trip is exact. A view's items are built one at a time as they are encoded (a whole snapshot
 * is also a view). One text holds a queue up to V8's string limit (about 512 MiB). Internal.
 */
export function encodeQueueSnapshot(snapshot: ResourceLeaseQueueSnapshotView): string {
  return JSON.stringify({
    format: FORMAT,
    lastEventSequence: snapshot.lastEventSequence,
    lastFencingToken: snapshot.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    mode: snapshot.mode,
    pending: mapList(snapshot.pending, encodePendingItem),
    delayed: mapList(snapshot.delayed, encodePendingItem),
    active: snapshot.active.map((a) => ({
      item: encodePendingItem(a.item),
      token: a.token,
      ...(a.peerId !== undefined ? { peerId: a.peerId } : {}),
      ...(a.principal !== undefined ? { principal: a.principal } : {}),
      leaseExpiresAt: a.leaseExpiresAt,
    })),
    deadLetters: mapList(snapshot.deadLetters, (d) => ({
      item: encodePendingItem(d),
      deadLetteredAt: d.deadLetteredAt,
      reason: d.reason,
    })),
    requestIds: snapshot.requestIds,
    reusableIds: snapshot.reusableIds ?? [],
    // Cron schedules (the schedule as core's wire JSON) and leases ended by a cancel; absent in older snapshots.
    schedules: (snapshot.schedules ?? []).map((e) => ({ ...e, schedule: encodeSchedule(e.schedule) })),
    cancelledLeases: snapshot.cancelledLeases ?? [],
    // Per-key rate windows and fair-sharing virtual times; absent when there are none (and in older snapshots).
    ...(snapshot.dispatch ? { dispatch: snapshot.dispatch } : {}),
    // The hash of the last event, which the next event's previousHash names; absent in older snapshots.
    ...(snapshot.lastEventHash !== undefined ? { lastEventHash: snapshot.lastEventHash } : {}),
  });
}

/** `f` of every entry of `list`, in order (entries read one at a time). */
function mapList<T, U>(list: ResourceLeaseSnapshotList<T>, f: (entry: T) => U): U[] {
  const out = new Array<U>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = f(list.at(i) as T);
  return out;
}

interface SnapshotJson {
  format: string;
  lastEventSequence: number;
  lastFencingToken: number;
  lastSequenceId: number;
  mode: "running" | "draining";
  pending: unknown[];
  delayed: unknown[];
  active: Array<{ item: unknown; token: ActiveLease["token"]; peerId?: string; principal?: string } & Timed>;
  deadLetters: Array<{
    item: unknown;
    deadLetteredAt: number;
    reason: ResourceLeaseQueueSnapshot["deadLetters"][0]["reason"];
  }>;
  requestIds: Array<[string, number, number]>;
  reusableIds: Array<[number, number]>;
  schedules?: Array<{ schedule: unknown; upsertedAt: number; firedThrough: number; lastSlotAt?: number }>;
  cancelledLeases?: Array<[string, number, number, number]>;
  lastEventHash?: unknown;
  dispatch?: { vtime: number; keys: Array<[string, number, number, number, number]> };
}

interface Timed {
  leaseExpiresAt: number;
}

/** Decodes what {@link encodeQueueSnapshot} wrote. Throws on anything else. Internal. */
export function decodeQueueSnapshot(text: string): ResourceLeaseQueueSnapshot {
  const s = JSON.parse(text) as SnapshotJson;
  if (s === null || typeof s !== "object" || s.format !== FORMAT || !Number.isSafeInteger(s.lastEventSequence)) {
    throw new Error("not a queue snapshot this package wrote");
  }
  for (const key of ["pending", "delayed", "active", "deadLetters", "requestIds", "reusableIds"] as const) {
    if (!Array.isArray(s[key])) throw new Error(`the snapshot has no ${key} list`);
  }
  const active: ActiveLease[] = s.active.map((a) => {
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
    pending: s.pending.map((p) => decodePendingItem(p)),
    delayed: s.delayed.map((p) => decodePendingItem(p)),
    active,
    deadLetters: s.deadLetters.map((d) => ({
      ...decodePendingItem(d.item),
      deadLetteredAt: d.deadLetteredAt,
      reason: d.reason,
    })),
    requestIds: s.requestIds.map(([id, seq, exp]) => [id, seq, exp] as const),
    reusableIds: s.reusableIds.map(([first, last]) => [first, last] as const),
    ...(s.schedules?.length
      ? {
          schedules: s.schedules.map((e) => ({
            schedule: decodeSchedule(e.schedule),
            upsertedAt: e.upsertedAt,
            firedThrough: e.firedThrough,
            ...(e.lastSlotAt !== undefined ? { lastSlotAt: e.lastSlotAt } : {}),
          })),
        }
      : {}),
    ...(s.cancelledLeases?.length
      ? { cancelledLeases: s.cancelledLeases.map(([id, seq, fence, exp]) => [id, seq, fence, exp] as const) }
      : {}),
    ...(s.dispatch ? { dispatch: decodeDispatch(s.dispatch) } : {}),
    ...decodeLastEventHash(s.lastEventHash),
  };
}

function decodeLastEventHash(value: unknown): { lastEventHash?: string } {
  if (value === undefined) return {};
  if (typeof value !== "string" || value.length === 0) throw new Error("bad last event hash in a snapshot");
  return { lastEventHash: value };
}

function decodeDispatch(d: unknown): NonNullable<ResourceLeaseQueueSnapshot["dispatch"]> {
  const { vtime, keys } = (d ?? {}) as { vtime?: unknown; keys?: unknown };
  const isEntry = (e: unknown) =>
    Array.isArray(e) &&
    e.length === 5 &&
    typeof e[0] === "string" &&
    e.slice(1).every((n) => typeof n === "number" && Number.isFinite(n));
  if (typeof vtime !== "number" || !Number.isFinite(vtime) || !Array.isArray(keys) || !keys.every(isEntry)) {
    throw new Error("bad per-key dispatch state in a snapshot");
  }
  return { vtime, keys: keys as Array<[string, number, number, number, number]> };
}
