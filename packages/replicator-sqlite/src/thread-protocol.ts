import type { MessagePort } from "node:worker_threads";
import { isOmniRelayError, OmniRelayError, type OmniRelayStatus } from "@omnirelay/core";
import type { HighWater } from "./high-water.js";
import { checksumMatches, type RawEventRow, type ReadEventRow } from "./integrity.js";
import type { Row } from "./log-rows.js";
import type { ResolvedReplicatorOptions } from "./options.js";

/** What the writer thread is started with. Internal. */
export interface WriterThreadData {
  readonly settings: ResolvedReplicatorOptions;
  /** Int32 slot the thread sets to 1 (and notifies) once a synchronous call's answer is on `syncPort`. */
  readonly flag: SharedArrayBuffer;
  readonly syncPort: MessagePort;
}

/** An error as it crosses between threads (structured clone keeps neither class nor code). Internal. */
export interface WireError {
  readonly omni: boolean;
  readonly message: string;
  readonly status?: OmniRelayStatus;
  readonly code?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Turns an error into its {@link WireError}. Internal. */
export function toWire(error: unknown): WireError {
  if (isOmniRelayError(error)) {
    return { omni: true, message: error.message, status: error.status, code: error.code, metadata: error.metadata };
  }
  const code = (error as { code?: unknown })?.code;
  return {
    omni: false,
    message: error instanceof Error ? error.message : String(error),
    ...(typeof code === "string" ? { code } : {}),
  };
}

/** Rebuilds the error a {@link WireError} describes: the same coded OmniRelayError, or an Error with its `code`. Internal. */
export function fromWire(w: WireError): Error {
  if (w.omni && w.status !== undefined && w.code !== undefined) {
    return new OmniRelayError({ status: w.status, code: w.code, message: w.message, metadata: w.metadata ?? {} });
  }
  const error = new Error(w.message) as Error & { code?: string };
  if (w.code !== undefined) error.code = w.code;
  return error;
}

/** Transactions of rows packed for transfer: the bytes in one buffer, four numbers per row. Internal. */
export interface PackedWrite {
  readonly kind: "write";
  readonly data: ArrayBuffer;
  /** `[sequence, type, timestamp, byteLength]` per row. */
  readonly meta: ArrayBuffer;
  /** Rows in each transaction, in order. */
  readonly txs: readonly number[];
}

/** Packs transactions of rows into one {@link PackedWrite}; `transfer` lists its buffers. Internal. */
export function packWrite(txs: readonly (readonly Row[])[]): { message: PackedWrite; transfer: ArrayBuffer[] } {
  let bytes = 0;
  let count = 0;
  for (const tx of txs) {
    count += tx.length;
    for (const r of tx) bytes += r.data.byteLength;
  }
  const data = new ArrayBuffer(bytes);
  const view = new Uint8Array(data);
  const meta = new Float64Array(count * 4);
  let at = 0;
  let m = 0;
  for (const tx of txs) {
    for (const r of tx) {
      view.set(r.data, at);
      at += r.data.byteLength;
      meta[m++] = r.sequence;
      meta[m++] = r.type;
      meta[m++] = r.timestamp;
      meta[m++] = r.data.byteLength;
    }
  }
  const message: PackedWrite = { kind: "write", data, meta: meta.buffer, txs: txs.map((t) => t.length) };
  return { message, transfer: [data, meta.buffer] };
}

/** The transactions of rows of a {@link PackedWrite} (over its buffer, no copy). Internal. */
export function unpackWrite(m: PackedWrite): Row[][] {
  const data = Buffer.from(m.data);
  const meta = new Float64Array(m.meta);
  const txs: Row[][] = [];
  let at = 0;
  let r = 0;
  for (const n of m.txs) {
    const rows: Row[] = [];
    for (let i = 0; i < n; i++, r += 4) {
      const length = meta[r + 3] as number;
      rows.push({
        sequence: meta[r] as number,
        type: meta[r + 1] as number,
        timestamp: meta[r + 2] as number,
        data: data.subarray(at, at + length),
      });
      at += length;
    }
    txs.push(rows);
  }
  return txs;
}

/** The thread's answer to a {@link PackedWrite}: how many transactions committed, and why the next one did not. */
export interface WriteDone {
  readonly kind: "written";
  readonly committed: number;
  readonly error?: WireError;
  /** Committed in the same transaction as the write answered before it. */
  readonly joined?: boolean;
}

/** The thread's first message: the verified log's state, or why it could not be opened. Internal. */
export type OpenReport =
  | {
      readonly kind: "opened";
      readonly last: number;
      readonly snapshot: number;
      readonly counters: { lastFencingToken: number; lastSequenceId: number };
      readonly recorded: HighWater | undefined;
    }
  | { readonly kind: "open-failed"; readonly error: WireError };

/** A call answered synchronously (the caller waits on the flag). Internal. */
export type SyncCall =
  | { readonly kind: "select"; readonly from: number; readonly limit: number }
  | { readonly kind: "latest-snapshot" }
  | { readonly kind: "snapshot-head" }
  | { readonly kind: "snapshot-parts"; readonly sequence: number; readonly from: number; readonly limit: number }
  | { readonly kind: "snap-clear"; readonly sequence: number }
  | {
      readonly kind: "snap-finish";
      readonly sequence: number;
      readonly createdAt: number;
      readonly head: string;
      /** Parts stored with the head in the same transaction (cleared first); none when stored in steps. */
      readonly parts?: Uint8Array[];
    };

/** The answer of a {@link SyncCall}. Internal. */
export type SyncAnswer =
  | { readonly ok: true; readonly value?: unknown }
  | { readonly ok: false; readonly error: WireError };

/** An asynchronous call other than a write, answered with an {@link AsyncDone}. Internal. */
export type AsyncCall =
  | { readonly kind: "backup"; readonly id: number; readonly to: string }
  /** Parts of a snapshot written in steps: the event loop goes on while the thread writes them (see `putParts`). */
  | {
      readonly kind: "snap-parts-async";
      readonly id: number;
      readonly sequence: number;
      readonly first: number;
      readonly parts: Uint8Array[];
    }
  | { readonly kind: "close" };

/** The answer of an {@link AsyncCall} (`id` 0 for close). Internal. */
export interface AsyncDone {
  readonly kind: "done";
  readonly id: number;
  readonly error?: WireError;
}

/** A Buffer over the bytes of a Uint8Array that crossed threads (no copy). Internal. */
export function asBuffer<T extends Uint8Array | string>(bytes: T): T extends string ? string : Buffer;
export function asBuffer(bytes: Uint8Array | string): Buffer | string {
  if (typeof bytes === "string" || Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The buffers of `values` that each own their whole `ArrayBuffer` (as better-sqlite3's BLOBs do), so they can be
 * transferred instead of copied; a string or a view into a shared buffer stays out (it is copied). Internal.
 */
export function ownedBuffers(values: readonly (Uint8Array | string)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of values) {
    if (typeof v === "string") continue;
    const buffer = v.buffer;
    if (buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === buffer.byteLength) out.push(buffer);
  }
  return out;
}

/**
 * A page of event rows packed for transfer (the answer of a `select`): the BLOBs in one buffer, and `[sequence, type,
 * byteLength, checksum matched (1/0)]` per row (byteLength -1: the row's data is the next of `texts`, a row written
 * before schema version 4). The reading thread checks each row's checksum as it packs it, so the receiver does not (a
 * restart's million CRCs run beside the replay instead of in it) and no checksum text crosses. One transferred buffer
 * instead of a cloned array and Uint8Array per row. Internal.
 */
export interface PackedRows {
  readonly data: ArrayBuffer;
  readonly meta: ArrayBuffer;
  readonly texts: readonly string[];
}

/** Fields of a row in {@link PackedRows.meta}. */
const META = 4;

/** Packs rows as {@link PackedRows}, checking each one's checksum; `transfer` lists its buffers. Internal. */
export function packRows(rows: readonly RawEventRow[]): { packed: PackedRows; transfer: ArrayBuffer[] } {
  let bytes = 0;
  for (const row of rows) if (typeof row[2] !== "string") bytes += row[2].byteLength;
  const data = new ArrayBuffer(bytes);
  const view = new Uint8Array(data);
  const meta = new Float64Array(rows.length * META);
  const texts: string[] = [];
  let at = 0;
  let m = 0;
  for (const [sequence, type, body, checksum] of rows) {
    meta[m++] = sequence;
    meta[m++] = type;
    if (typeof body === "string") {
      texts.push(body);
      meta[m++] = -1;
    } else {
      view.set(body, at);
      at += body.byteLength;
      meta[m++] = body.byteLength;
    }
    meta[m++] = checksumMatches(body, checksum) ? 1 : 0;
  }
  return { packed: { data, meta: meta.buffer, texts }, transfer: [data, meta.buffer] };
}

/** The rows of {@link PackedRows}, each BLOB a Buffer over the page's one buffer (no copy), checksums checked. Internal. */
export function unpackRows(p: PackedRows): ReadEventRow[] {
  const data = Buffer.from(p.data);
  const meta = new Float64Array(p.meta);
  const rows: ReadEventRow[] = [];
  let at = 0;
  let text = 0;
  for (let m = 0; m < meta.length; m += META) {
    const length = meta[m + 2] as number;
    let body: string | Buffer;
    if (length < 0) body = p.texts[text++] as string;
    else {
      body = data.subarray(at, at + length);
      at += length;
    }
    rows.push([meta[m] as number, meta[m + 1] as number, body, meta[m + 3] === 1]);
  }
  return rows;
}
