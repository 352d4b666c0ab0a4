import {
  decodePendingItem,
  encodePendingItem,
  type ResourceLeaseDeadLetterItem,
  type ResourceLeaseOwnershipToken,
  type ResourceLeaseQueueSnapshot,
} from "@omnirelay/core";

type ActiveLease = ResourceLeaseQueueSnapshot["active"][number];

/**
 * Encodes a queue snapshot as JSON text. Items go through core's pending-item JSON (bodies as base64, times as
 * ISO-8601), so the text is portable and the round trip is exact. Internal.
 */
export function encodeSnapshot(snapshot: ResourceLeaseQueueSnapshot): string {
  return JSON.stringify({
    version: snapshot.version,
    lastEventSequence: snapshot.lastEventSequence,
    lastFencingToken: snapshot.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    mode: snapshot.mode,
    pending: snapshot.pending.map(encodePendingItem),
    delayed: snapshot.delayed.map(encodePendingItem),
    active: snapshot.active.map((a) => ({
      item: encodePendingItem(a.item),
      token: a.token,
      peerId: a.peerId,
      principal: a.principal,
      leaseExpiresAt: a.leaseExpiresAt,
    })),
    deadLetters: snapshot.deadLetters.map((d) => ({
      item: encodePendingItem(d),
      deadLetteredAt: d.deadLetteredAt,
      reason: d.reason,
    })),
    requestIds: snapshot.requestIds,
  });
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

/** Decodes {@link encodeSnapshot}'s text. Throws on anything malformed. Internal. */
export function decodeSnapshot(text: string): ResourceLeaseQueueSnapshot {
  const s = JSON.parse(text) as SnapshotJson;
  if (s === null || typeof s !== "object" || s.version !== 1 || !Number.isSafeInteger(s.lastEventSequence)) {
    throw new Error("not a version 1 queue snapshot");
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
  };
}
