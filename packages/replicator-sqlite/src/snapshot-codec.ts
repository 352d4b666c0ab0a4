import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseOwnershipToken,
  ResourceLeaseQueueSnapshot,
} from "@omnirelay/core";
import {
  type ResourceLeaseQueueSnapshotView,
  type ResourceLeaseSnapshotInPieces,
  type ResourceLeaseSnapshotPiece,
  snapshotInOnePiece,
} from "@omnirelay/core/replication";
import { decodePendingItem } from "@omnirelay/core/wire";
import { decodeSnapshotPart, emptyLists, snapshotParts } from "./snapshot-binary.js";

type ActiveLease = ResourceLeaseQueueSnapshot["active"][number];

/** Most entries (items of all kinds, request ids) in one part of a snapshot. Internal. */
export const SNAPSHOT_PART_ENTRIES = 5000;

/** A snapshot as stored: a small head (JSON text) and its parts (binary), each of its own row. Internal. */
export interface EncodedSnapshot {
  readonly head: string;
  readonly parts: readonly Buffer[];
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
 * Encodes a queue snapshot as a head (JSON: counters, `version: 3`, the number of parts) and binary parts of at most
 * {@link SNAPSHOT_PART_ENTRIES} entries (see snapshot-binary.ts: bodies as raw bytes, times as numbers). One value for
 * the whole queue cannot hold a large one (V8 strings stop at about 512 MiB), and parts keep each row small. Version 2
 * (JSON parts, items as core's pending-item JSON) and version 1 (one JSON text) are still read. Internal.
 */
export function encodeSnapshot(snapshot: ResourceLeaseQueueSnapshotView): EncodedSnapshot {
  const parts = [...encodeSnapshotParts(snapshot)];
  return { head: encodeSnapshotHead(snapshot, parts.length), parts };
}

/** The binary parts of a snapshot, encoded one at a time. Internal. */
export function encodeSnapshotParts(snapshot: ResourceLeaseQueueSnapshotView): Generator<Buffer> {
  return snapshotParts(snapshot, SNAPSHOT_PART_ENTRIES);
}

/** The head of a snapshot of `parts` binary parts. Internal. */
export function encodeSnapshotHead(snapshot: ResourceLeaseQueueSnapshotView, parts: number): string {
  return JSON.stringify({
    version: 3,
    lastEventSequence: snapshot.lastEventSequence,
    lastFencingToken: snapshot.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    mode: snapshot.mode,
    parts,
    // The fair-sharing virtual time; the per-key dispatch state is in the parts. Absent when there is none.
    ...(snapshot.dispatch ? { vtime: snapshot.dispatch.vtime } : {}),
    // The hash of the last event, which the next event's previousHash names. Absent in older snapshots.
    ...(snapshot.lastEventHash !== undefined ? { lastEventHash: snapshot.lastEventHash } : {}),
  });
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
 * Decodes a snapshot: a version 3 head with its binary parts or a version 2 head with its JSON parts (in order), or a
 * version 1 text (one JSON, from earlier versions) with none. Throws on anything malformed. Internal.
 */
export function decodeSnapshot(head: string, parts: readonly (string | Uint8Array)[] = []): ResourceLeaseQueueSnapshot {
  const s = JSON.parse(head) as
    | SnapshotJson
    | (Omit<SnapshotJson, "version"> & { version: 2 | 3; parts: number; vtime?: number; lastEventHash?: unknown });
  if (s === null || typeof s !== "object" || !Number.isSafeInteger(s.lastEventSequence)) {
    throw new Error("not a queue snapshot");
  }
  if (s.version === 3) {
    const { head, pieces } = decodeVersion3(s as HeadJson, [...parts]);
    const { dispatchVirtualTime: vtime, ...rest } = head;
    const lists = emptyLists();
    for (const piece of pieces) {
      for (const [name, list] of Object.entries(piece)) {
        const into = lists[name as ListName] as unknown[];
        for (const entry of list as readonly unknown[]) into.push(entry);
      }
    }
    const { schedules, cancelledLeases, dispatchKeys, ...always } = lists;
    return {
      ...rest,
      ...always,
      // Present only when there are some, as the queue captures them.
      ...(schedules.length > 0 ? { schedules } : {}),
      ...(cancelledLeases.length > 0 ? { cancelledLeases } : {}),
      ...(vtime !== undefined ? { dispatch: { vtime, keys: dispatchKeys } } : {}),
    };
  }
  let body: PartJson;
  if (s.version === 1) {
    if (parts.length !== 0) throw new Error("a version 1 snapshot has no parts");
    body = { ...s, reusableIds: [] };
  } else if (s.version === 2 && s.parts === parts.length) {
    body = emptyPart();
    for (const text of parts) {
      if (typeof text !== "string") throw new Error("a version 2 snapshot part is JSON text");
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

type ListName = keyof ReturnType<typeof emptyLists>;
type HeadJson = Omit<SnapshotJson, "version"> & { version: 3; parts: number; vtime?: number; lastEventHash?: unknown };

/**
 * Decodes a snapshot in pieces (see core's `ResourceLeaseSnapshotInPieces`): its head at once, then one piece per
 * binary part (version 3), each decoded only when the caller reaches it, its part let go of once decoded (`parts` is
 * emptied as it goes). A version 1 or 2 snapshot is decoded whole, as one piece. Internal.
 * @throws Error for a malformed head at once, and for a malformed part when the pieces reach it.
 */
export function decodeSnapshotInPieces(head: string, parts: (string | Uint8Array)[]): ResourceLeaseSnapshotInPieces {
  const s = JSON.parse(head) as HeadJson | { version?: unknown };
  if (s !== null && typeof s === "object" && s.version === 3) return decodeVersion3(s as HeadJson, parts);
  return snapshotInOnePiece(decodeSnapshot(head, parts));
}

/** The head of a version 3 snapshot of `parts` parts, checked. Internal. @throws Error for a malformed head. */
export function decodeVersion3Head(s: HeadJson, parts: number): ResourceLeaseSnapshotInPieces["head"] {
  if (!Number.isSafeInteger(s.lastEventSequence)) throw new Error("not a queue snapshot");
  if (s.parts !== parts) throw new Error("parts are missing");
  const { lastEventSequence, lastFencingToken, lastSequenceId, mode } = s;
  if (!Number.isSafeInteger(lastFencingToken) || !Number.isSafeInteger(lastSequenceId)) {
    throw new Error("bad counters");
  }
  if (mode !== "running" && mode !== "draining") throw new Error("bad mode");
  const vtime = s.vtime;
  if (vtime !== undefined && !Number.isFinite(vtime)) throw new Error("bad virtual time");
  return {
    version: 1 as const,
    lastEventSequence,
    lastFencingToken,
    lastSequenceId,
    mode,
    ...(vtime !== undefined ? { dispatchVirtualTime: vtime } : {}),
    ...lastEventHash(s.lastEventHash),
  };
}

/**
 * The head of a snapshot stored with `parts` parts when it is of version 3 (binary parts), `undefined` for an older
 * one. Internal. @throws Error for a malformed head.
 */
export function decodeSnapshotHead(text: string, parts: number): ResourceLeaseSnapshotInPieces["head"] | undefined {
  const s = JSON.parse(text) as HeadJson | { version?: unknown } | null;
  return s !== null && typeof s === "object" && s.version === 3 ? decodeVersion3Head(s as HeadJson, parts) : undefined;
}

/** A version 3 snapshot: its head checked now, its parts decoded as the pieces are read. */
function decodeVersion3(s: HeadJson, parts: (string | Uint8Array | undefined)[]): ResourceLeaseSnapshotInPieces {
  const head = decodeVersion3Head(s, parts.length);
  return { head, pieces: version3Pieces(parts, head.dispatchVirtualTime !== undefined) };
}

function* version3Pieces(
  parts: (string | Uint8Array | undefined)[],
  withVirtualTime: boolean,
): Generator<ResourceLeaseSnapshotPiece> {
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    parts[i] = undefined; // decoded once: its bytes can go
    yield decodeSnapshotPiece(part, withVirtualTime);
  }
}

/**
 * One binary part of a version 3 snapshot as a piece; `withVirtualTime` when the head holds the dispatch state's
 * virtual time. Internal. @throws Error for a malformed part.
 */
export function decodeSnapshotPiece(
  part: string | Uint8Array | undefined,
  withVirtualTime: boolean,
): ResourceLeaseSnapshotPiece {
  if (typeof part !== "object") throw new Error("a version 3 snapshot part is binary");
  const lists = emptyLists();
  decodeSnapshotPart(part, lists);
  if (!withVirtualTime && lists.dispatchKeys.length > 0) throw new Error("per-key dispatch state without its head");
  return lists;
}

function lastEventHash(value: unknown): { lastEventHash?: string } {
  if (value === undefined) return {};
  if (typeof value !== "string" || value.length === 0) throw new Error("bad last event hash");
  return { lastEventHash: value };
}
