import type { ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type {
  ResourceLeaseQueueSnapshotView,
  ResourceLeaseSnapshotInPieces,
  ResourceLeaseSnapshotList,
  ResourceLeaseSnapshotPiece,
} from "@omnirelay/core/replication";
import { decodePendingItem, decodeSchedule, encodePendingItem, encodeSchedule } from "@omnirelay/core/wire";

type Snapshot = ResourceLeaseQueueSnapshot;
type ActiveLease = Snapshot["active"][number];
type DispatchKey = NonNullable<Snapshot["dispatch"]>["keys"][number];

/** The format this package writes: a head line, then one line per entry of each list, in {@link LISTS}' order. */
const FORMAT = "omnirelay-queue-snapshot/2";
/** The format of earlier versions: the whole snapshot as one JSON text (still read). */
const FORMAT_V1 = "omnirelay-queue-snapshot/1";

/** The lists of a snapshot, in the order their lines follow the head (`dispatchKeys`: `dispatch.keys`). */
const LISTS = [
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
type ListName = (typeof LISTS)[number];

/**
 * Entries per step of the encoder and per piece of the decoder: a step is one string of this many lines (~1 MiB with
 * 200-byte bodies), so no text ever holds the whole queue and the event loop is let go between steps.
 */
const STEP = 2048;

/** Each list's entry as its JSON line, and back; the items go through core's pending-item JSON (exact round trip). */
const CODECS: { readonly [K in ListName]: { encode(entry: never): unknown; decode(json: unknown): unknown } } = {
  pending: { encode: encodePendingItem, decode: (j) => decodePendingItem(j) },
  delayed: { encode: encodePendingItem, decode: (j) => decodePendingItem(j) },
  active: { encode: encodeActive, decode: decodeActive },
  deadLetters: {
    encode: (d: Snapshot["deadLetters"][number]) => ({
      item: encodePendingItem(d),
      deadLetteredAt: d.deadLetteredAt,
      reason: d.reason,
    }),
    decode: (j) => {
      const d = j as { item: unknown; deadLetteredAt: number; reason: Snapshot["deadLetters"][number]["reason"] };
      return { ...decodePendingItem(d.item), deadLetteredAt: d.deadLetteredAt, reason: d.reason };
    },
  },
  requestIds: { encode: same, decode: (j) => tuple(j, 3, "request id") },
  reusableIds: { encode: same, decode: (j) => tuple(j, 2, "reusable id range") },
  schedules: {
    encode: (e: NonNullable<Snapshot["schedules"]>[number]) => ({ ...e, schedule: encodeSchedule(e.schedule) }),
    decode: (j) => {
      const e = j as { schedule: unknown; upsertedAt: number; firedThrough: number; lastSlotAt?: number };
      return {
        schedule: decodeSchedule(e.schedule),
        upsertedAt: e.upsertedAt,
        firedThrough: e.firedThrough,
        ...(e.lastSlotAt !== undefined ? { lastSlotAt: e.lastSlotAt } : {}),
      };
    },
  },
  cancelledLeases: { encode: same, decode: (j) => tuple(j, 4, "cancelled lease") },
  dispatchKeys: { encode: same, decode: decodeDispatchKey },
};

function same<T>(value: T): T {
  return value;
}

function encodeActive(a: ActiveLease): unknown {
  return {
    item: encodePendingItem(a.item),
    token: a.token,
    ...(a.peerId !== undefined ? { peerId: a.peerId } : {}),
    ...(a.principal !== undefined ? { principal: a.principal } : {}),
    leaseExpiresAt: a.leaseExpiresAt,
  };
}

function decodeActive(json: unknown): ActiveLease {
  const a = json as { item: unknown; token: ActiveLease["token"]; peerId?: string; principal?: string } & {
    leaseExpiresAt: number;
  };
  const out: { -readonly [K in keyof ActiveLease]: ActiveLease[K] } = {
    item: decodePendingItem(a.item),
    token: a.token,
    leaseExpiresAt: a.leaseExpiresAt,
  };
  if (a.peerId !== undefined) out.peerId = a.peerId;
  if (a.principal !== undefined) out.principal = a.principal;
  return out;
}

function tuple(json: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(json) || json.length !== length) throw new Error(`bad ${what} in a snapshot`);
  return json;
}

function decodeDispatchKey(json: unknown): DispatchKey {
  const ok =
    Array.isArray(json) && json.length === 5 && typeof json[0] === "string" && json.slice(1).every(isFiniteNumber);
  if (!ok) throw new Error("bad per-key dispatch state in a snapshot");
  return json as unknown as DispatchKey;
}

/** The head line of a snapshot: everything but its lists, and how many lines of each list follow. */
interface HeadJson {
  format: typeof FORMAT;
  lastEventSequence: number;
  lastFencingToken: number;
  lastSequenceId: number;
  mode: "running" | "draining";
  dispatchVirtualTime?: number;
  lastEventHash?: string;
  counts: Record<ListName, number>;
}

/**
 * Encodes a queue snapshot (or a view, whose items are built one at a time as they are encoded) as text in steps: the
 * head line first, then lines of at most {@link STEP} entries each. Joined, the steps are the stored snapshot; no step
 * holds more than its entries, so a queue of any size encodes without one text of all of it. Internal.
 */
export function* encodeQueueSnapshotInSteps(snapshot: ResourceLeaseQueueSnapshotView): Generator<string> {
  const lists: Record<ListName, ResourceLeaseSnapshotList<unknown>> = {
    pending: snapshot.pending,
    delayed: snapshot.delayed,
    active: snapshot.active,
    deadLetters: snapshot.deadLetters,
    requestIds: snapshot.requestIds,
    reusableIds: snapshot.reusableIds ?? [],
    schedules: snapshot.schedules ?? [],
    cancelledLeases: snapshot.cancelledLeases ?? [],
    dispatchKeys: snapshot.dispatch?.keys ?? [],
  };
  const head: HeadJson = {
    format: FORMAT,
    lastEventSequence: snapshot.lastEventSequence,
    lastFencingToken: snapshot.lastFencingToken,
    lastSequenceId: snapshot.lastSequenceId,
    mode: snapshot.mode,
    ...(snapshot.dispatch ? { dispatchVirtualTime: snapshot.dispatch.vtime } : {}),
    // The hash of the last event, which the next event's previousHash names.
    ...(snapshot.lastEventHash !== undefined ? { lastEventHash: snapshot.lastEventHash } : {}),
    counts: Object.fromEntries(LISTS.map((name) => [name, lists[name].length])) as Record<ListName, number>,
  };
  yield `${JSON.stringify(head)}\n`;
  for (const name of LISTS) {
    const list = lists[name];
    const encode = CODECS[name].encode as (entry: unknown) => unknown;
    for (let from = 0; from < list.length; from += STEP) {
      let text = "";
      const to = Math.min(list.length, from + STEP);
      for (let i = from; i < to; i++) text += `${JSON.stringify(encode(list.at(i)))}\n`;
      yield text;
    }
  }
}

/** A decoded snapshot: the last event it covers, and the snapshot for `ResourceLeaseQueue.rebuild`. Internal. */
export interface DecodedQueueSnapshot {
  readonly lastEventSequence: number;
  readonly snapshot: ResourceLeaseQueueSnapshot | ResourceLeaseSnapshotInPieces;
}

const NEWLINE = 0x0a;

/**
 * Decodes what {@link encodeQueueSnapshotInSteps} wrote (or an earlier version's single JSON text). The head is read
 * here; the lists are decoded piece by piece as the rebuild reads them, so the decoded queue is never held twice.
 * Throws on a head that is not a snapshot's here; `corrupt(reason)` is thrown while the pieces are read. Internal.
 */
export function decodeQueueSnapshot(bytes: Uint8Array, corrupt: (reason: string) => Error): DecodedQueueSnapshot {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const end = bytes.indexOf(NEWLINE);
  if (end < 0) {
    const snapshot = decodeWholeSnapshot(decoder.decode(bytes));
    return { lastEventSequence: snapshot.lastEventSequence, snapshot };
  }
  const head = JSON.parse(decoder.decode(bytes.subarray(0, end))) as HeadJson;
  if (head === null || typeof head !== "object" || head.format !== FORMAT) {
    throw new Error("not a queue snapshot this package wrote");
  }
  checkHead(head);
  return {
    lastEventSequence: head.lastEventSequence,
    snapshot: {
      head: {
        version: 1,
        lastEventSequence: head.lastEventSequence,
        lastFencingToken: head.lastFencingToken,
        lastSequenceId: head.lastSequenceId,
        mode: head.mode,
        ...(head.dispatchVirtualTime !== undefined ? { dispatchVirtualTime: head.dispatchVirtualTime } : {}),
        ...(head.lastEventHash !== undefined ? { lastEventHash: head.lastEventHash } : {}),
      },
      pieces: readPieces({ bytes, start: end + 1, decoder, corrupt }, head.counts),
    },
  };
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** The hash of a snapshot's last event, which the next event's previousHash names: absent, or a non-empty string. */
function checkLastEventHash(h: unknown): void {
  if (h !== undefined && (typeof h !== "string" || h.length === 0))
    throw new Error("bad last event hash in a snapshot");
}

function checkHead(head: HeadJson): void {
  for (const key of ["lastEventSequence", "lastFencingToken", "lastSequenceId"] as const) {
    if (!Number.isSafeInteger(head[key]) || head[key] < 0) throw new Error(`bad ${key} in a snapshot head`);
  }
  if (head.mode !== "running" && head.mode !== "draining") throw new Error("bad mode in a snapshot head");
  const v = head.dispatchVirtualTime;
  if (v !== undefined && !isFiniteNumber(v)) throw new Error("bad per-key dispatch state in a snapshot head");
  checkLastEventHash(head.lastEventHash);
  if (head.counts === null || typeof head.counts !== "object") throw new Error("a snapshot head without its counts");
  for (const name of LISTS) {
    const n = head.counts[name];
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad count of ${name} in a snapshot head`);
  }
  if (head.counts.dispatchKeys > 0 && v === undefined) {
    throw new Error("per-key dispatch state without its virtual time in a snapshot head");
  }
}

/** Where a snapshot's lines are read from: its bytes, the first list line's offset, and how to report damage. */
interface Lines {
  readonly bytes: Uint8Array;
  readonly start: number;
  readonly decoder: { decode(bytes: Uint8Array): string };
  readonly corrupt: (reason: string) => Error;
}

/** The lists' lines, as pieces of at most {@link STEP} entries of one list each. */
function* readPieces(lines: Lines, counts: Record<ListName, number>): Generator<ResourceLeaseSnapshotPiece> {
  const { bytes, decoder, corrupt } = lines;
  let at = lines.start;
  for (const name of LISTS) {
    const decode = CODECS[name].decode;
    for (let left = counts[name]; left > 0; ) {
      const n = Math.min(left, STEP);
      let end = at;
      for (let i = 0; i < n; i++) {
        const newline = bytes.indexOf(NEWLINE, end);
        if (newline < 0) throw corrupt(`the snapshot ends before its last ${name} entry`);
        end = newline + 1;
      }
      let entries: unknown[];
      try {
        entries = decoder
          .decode(bytes.subarray(at, end - 1))
          .split("\n")
          .map((line: string) => decode(JSON.parse(line)));
      } catch (error) {
        throw corrupt(`a ${name} entry does not decode: ${error instanceof Error ? error.message : String(error)}`);
      }
      yield { [name]: entries } as ResourceLeaseSnapshotPiece;
      at = end;
      left -= n;
    }
  }
  if (at !== bytes.length) throw corrupt("the snapshot holds more lines than its head counts");
}

/** An earlier version's snapshot: one JSON text. Throws on anything else. */
function decodeWholeSnapshot(text: string): Snapshot {
  const s = JSON.parse(text) as Omit<HeadJson, "format" | "counts" | "dispatchVirtualTime"> & {
    format: string;
    dispatch?: { vtime: unknown; keys: unknown };
  } & { [K in Exclude<ListName, "dispatchKeys">]: unknown[] };
  if (s === null || typeof s !== "object" || s.format !== FORMAT_V1 || !Number.isSafeInteger(s.lastEventSequence)) {
    throw new Error("not a queue snapshot this package wrote");
  }
  for (const key of ["pending", "delayed", "active", "deadLetters", "requestIds", "reusableIds"] as const) {
    if (!Array.isArray(s[key])) throw new Error(`the snapshot has no ${key} list`);
  }
  const list = <K extends ListName>(name: K, entries: unknown[] | undefined) =>
    (entries ?? []).map(CODECS[name].decode) as never;
  const dispatch = s.dispatch;
  if (dispatch !== undefined && (!isFiniteNumber(dispatch.vtime) || !Array.isArray(dispatch.keys))) {
    throw new Error("bad per-key dispatch state in a snapshot");
  }
  const h = s.lastEventHash;
  checkLastEventHash(h);
  return {
    version: 1,
    lastEventSequence: s.lastEventSequence,
    lastFencingToken: s.lastFencingToken,
    lastSequenceId: s.lastSequenceId,
    mode: s.mode,
    pending: list("pending", s.pending),
    delayed: list("delayed", s.delayed),
    active: list("active", s.active),
    deadLetters: list("deadLetters", s.deadLetters),
    requestIds: list("requestIds", s.requestIds),
    reusableIds: list("reusableIds", s.reusableIds),
    ...(s.schedules?.length ? { schedules: list("schedules", s.schedules) } : {}),
    ...(s.cancelledLeases?.length ? { cancelledLeases: list("cancelledLeases", s.cancelledLeases) } : {}),
    ...(dispatch
      ? { dispatch: { vtime: dispatch.vtime as number, keys: list("dispatchKeys", dispatch.keys as []) } }
      : {}),
    ...(h !== undefined ? { lastEventHash: h } : {}),
  };
}
