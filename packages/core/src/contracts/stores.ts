import type { CallOptions } from "./events.js";

/** A record in a {@link DeterministicStateStore}. */
export interface DeterministicRecord {
  /** What the record is, e.g. `"omnirelay.version"` or `"omnirelay.effect"`. Not blank. */
  readonly kind: string;
  readonly version: number;
  readonly payload: Uint8Array;
  /** ms since the epoch. */
  readonly recordedAt: number;
}

/** Key/value store for deterministic capture. `tryAdd` is insert-if-absent and must be atomic. */
export interface DeterministicStateStore {
  get(key: string): Promise<DeterministicRecord | undefined>;
  set(key: string, record: DeterministicRecord): Promise<void>;
  /** Inserts when the key is absent; returns `false` (and changes nothing) when it is present. */
  tryAdd(key: string, record: DeterministicRecord): Promise<boolean>;
}

/** Options of {@link ResourceLeaseObjectStore.put}. */
export interface ObjectPutOptions extends CallOptions {
  /** The object's media type, e.g. `application/json`; a store that keeps none (the filesystem) ignores it. */
  readonly contentType: string;
  /** `"*"`: create only; the put fails with `already-exists` when the key exists. */
  readonly ifNoneMatch?: "*";
}

/** A listed object key. */
export interface ObjectListEntry {
  readonly key: string;
  readonly size?: number;
}

/** Minimal object storage used by the object-storage replicator (S3, GCS, Azure, filesystem). */
export interface ResourceLeaseObjectStore {
  /** Stores `bytes` under `key` with `options.contentType` (replacing what is there, unless `ifNoneMatch`). */
  put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void>;
  /** Returns `undefined` when the key does not exist. */
  get(key: string, options?: CallOptions): Promise<Uint8Array | undefined>;
  /** Lists keys with `prefix`, in lexicographic order, strictly after `startAfter` when given. */
  list(prefix: string, startAfter?: string, options?: CallOptions): AsyncIterable<ObjectListEntry>;
}
