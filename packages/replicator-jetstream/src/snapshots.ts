import { createHash, randomUUID } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import { type JetStreamManager, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { OmniRelayError, type ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotInPieces } from "@omnirelay/core/replication";
import { JetStreamErrorCodes, unavailableError } from "./errors.js";
import { decodeQueueSnapshot, encodeQueueSnapshotInSteps } from "./snapshot-codec.js";

/** Where a shard's snapshots go. Internal. */
export interface SnapshotStoreSettings {
  /** KV bucket holding every shard's snapshots. */
  readonly bucket: string;
  readonly shard: string;
  /** Replicas of a bucket this store creates. */
  readonly replicas: number;
  /** Largest value written: a snapshot larger than this is stored in parts. */
  readonly chunkBytes: number;
  readonly timeoutMs: number;
}

/** The head key of a shard's snapshot: what it covers and where its parts are. */
interface SnapshotHead {
  readonly format: "omnirelay-snapshot-head/1";
  readonly lastEventSequence: number;
  readonly id: string;
  readonly parts: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** A snapshot read back, with what it cost. Internal. */
export interface LoadedSnapshot {
  /** The last event it covers. */
  readonly lastEventSequence: number;
  /** For `ResourceLeaseQueue.rebuild`: its lists are decoded piece by piece as the rebuild reads them. */
  readonly snapshot: ResourceLeaseQueueSnapshot | ResourceLeaseSnapshotInPieces;
  readonly parts: number;
  readonly bytes: number;
}

const encoder = new TextEncoder();
/** Parts of a snapshot read at once (each a request to the bucket's stream). */
const READ_AHEAD = 8;
const WRONG_LAST_SEQUENCE = 10071;

/**
 * A shard's queue snapshots in a KV bucket: the head key `<shard>` says which snapshot is current (the last event
 * sequence it covers, its id, parts and digest); its body is in the keys `<shard>.<id>.<n>`, each at most
 * `chunkBytes`. A new snapshot writes its parts first, then replaces the head by compare-and-set, only when it covers
 * more events than the head's; then the parts of older snapshots are purged from the bucket's stream (no tombstones).
 * Internal.
 */
export class JetStreamSnapshotStore {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly settings: SnapshotStoreSettings,
  ) {}

  /**
   * Opens (creating when absent: history 1, file storage) the bucket.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
   */
  static async open(nc: NatsConnection, settings: SnapshotStoreSettings): Promise<JetStreamSnapshotStore> {
    try {
      const jsm = await jetstreamManager(nc, { timeout: settings.timeoutMs });
      const kv = await new Kvm(nc).create(settings.bucket, {
        history: 1,
        replicas: settings.replicas,
        storage: StorageType.File,
        allow_direct: false,
      });
      return new JetStreamSnapshotStore(kv, jsm, settings);
    } catch (error) {
      throw unavailableError(error, `KV_${settings.bucket}`, "open or create the snapshot bucket");
    }
  }

  /** The stream subject of a key of this bucket. */
  private subject(key: string): string {
    return `$KV.${this.settings.bucket}.${key}`;
  }

  /**
   * The shard's newest snapshot, or `undefined` when it has none. A snapshot whose parts are missing or do not match
   * its digest (a newer one replaced it while this read ran, twice in a row) counts as none: the log still holds
   * every event, so the replay just starts earlier.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable` when the bucket cannot be read.
   */
  async load(): Promise<LoadedSnapshot | undefined> {
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const head = await this.readHead();
        if (head === undefined) return undefined;
        const bytes = await this.readParts(head.value);
        if (bytes === undefined) continue;
        const key = `${this.settings.shard}.${head.value.id}`;
        const decoded = decodeQueueSnapshot(bytes, (reason) => snapshotCorrupt(this.settings.bucket, key, reason));
        return { ...decoded, parts: head.value.parts, bytes: bytes.length };
      }
      return undefined;
    } catch (error) {
      throw unavailableError(error, `KV_${this.settings.bucket}`, "read a snapshot from");
    }
  }

  private async readHead(): Promise<{ readonly value: SnapshotHead; readonly revision: number } | undefined> {
    const entry = await this.kv.get(this.settings.shard);
    if (entry === null || entry.operation !== "PUT") return undefined;
    const value = entry.json<SnapshotHead>();
    if (value?.format !== "omnirelay-snapshot-head/1")
      throw new Error("the snapshot head is not one this package wrote");
    return { value, revision: entry.revision };
  }

  /**
   * The snapshot's bytes, or `undefined` when a part is missing or they do not match the head. Every part but the last
   * is as long as the first, so after the first, {@link READ_AHEAD} parts are read at a time, each into its place.
   */
  private async readParts(head: SnapshotHead): Promise<Uint8Array | undefined> {
    const get = async (i: number) => {
      const part = await this.kv.get(`${this.settings.shard}.${head.id}.${i}`);
      return part === null || part.operation !== "PUT" ? undefined : part.value;
    };
    const first = await get(0);
    const stride = first?.length ?? 0;
    if (first === undefined || stride > head.bytes || (stride < head.bytes && (stride === 0 || head.parts < 2))) {
      return undefined;
    }
    const bytes = new Uint8Array(head.bytes);
    bytes.set(first, 0);
    let complete = true;
    for (let from = 1; from < head.parts && complete; from += READ_AHEAD) {
      const batch = [];
      for (let i = from; i < Math.min(head.parts, from + READ_AHEAD); i++) batch.push(get(i));
      (await Promise.all(batch)).forEach((part, k) => {
        const at = (from + k) * stride;
        const last = from + k === head.parts - 1;
        if (part === undefined || (last ? at + part.length !== bytes.length : part.length !== stride)) complete = false;
        else bytes.set(part, at);
      });
    }
    if (!complete || head.parts !== Math.max(1, Math.ceil(head.bytes / stride))) return undefined;
    if (createHash("sha256").update(bytes).digest("hex") !== head.sha256) return undefined;
    return bytes;
  }

  /**
   * Stores `snapshot` as the shard's newest, unless the bucket already holds one covering as many events. Resolves
   * `true` when it became the head. The snapshot is encoded a step at a time, and each part is written as soon as it
   * is full: no text or buffer of the whole snapshot is built, and the event loop is let go after every step.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
   */
  async save(snapshot: ResourceLeaseQueueSnapshotView): Promise<boolean> {
    const { shard, chunkBytes } = this.settings;
    const id = randomUUID().replaceAll("-", "").slice(0, 16);
    const hash = createHash("sha256");
    let parts = 0;
    let bytes = 0;
    let part = new Uint8Array(chunkBytes);
    let filled = 0;
    const flush = async () => {
      await this.kv.put(`${shard}.${id}.${parts}`, part.subarray(0, filled));
      parts++;
      part = new Uint8Array(chunkBytes);
      filled = 0;
    };
    try {
      for (const text of encodeQueueSnapshotInSteps(snapshot)) {
        const step = encoder.encode(text);
        hash.update(step);
        bytes += step.length;
        for (let at = 0; at < step.length; ) {
          const n = Math.min(step.length - at, chunkBytes - filled);
          part.set(step.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled === chunkBytes) await flush();
        }
        await nextTurn();
      }
      if (filled > 0) await flush();
      const head: SnapshotHead = {
        format: "omnirelay-snapshot-head/1",
        lastEventSequence: snapshot.lastEventSequence,
        id,
        parts,
        bytes,
        sha256: hash.digest("hex"),
      };
      const stored = await this.replaceHead(head);
      await this.purgeExcept(stored ? head.id : undefined, head.id);
      return stored;
    } catch (error) {
      throw unavailableError(error, `KV_${this.settings.bucket}`, "write a snapshot to");
    }
  }

  /** Compare-and-set of the head: only over a head that covers fewer events. */
  private async replaceHead(head: SnapshotHead): Promise<boolean> {
    const text = JSON.stringify(head);
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.kv.get(this.settings.shard);
      const current = entry?.operation === "PUT" ? entry.json<SnapshotHead>() : undefined;
      if (current !== undefined && current.lastEventSequence >= head.lastEventSequence) return false;
      try {
        if (entry === null) await this.kv.create(this.settings.shard, text);
        else await this.kv.update(this.settings.shard, text, entry.revision);
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code !== WRONG_LAST_SEQUENCE) throw error;
      }
    }
    return false;
  }

  /**
   * Purges the parts of every snapshot of the shard but `keep`'s: older heads' parts and orphans of writers that
   * stopped between their parts and their head. `own` is this save's id: purged when it did not become the head.
   */
  private async purgeExcept(keep: string | undefined, own: string): Promise<void> {
    const stream = `KV_${this.settings.bucket}`;
    const prefix = this.subject(`${this.settings.shard}.`);
    const info = await this.jsm.streams.info(stream, { subjects_filter: `${prefix}*.*` });
    const ids = new Set(Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length).split(".")[0]));
    if (keep === undefined) ids.add(own);
    // A head another writer stored meanwhile keeps its parts.
    const current = (await this.readHead())?.value.id;
    for (const id of ids) {
      if (id === undefined || id === keep || id === current) continue;
      await this.jsm.streams.purge(stream, { filter: `${prefix}${id}.>` });
    }
  }
}

/** data-loss `resourcelease.jetstream.corrupt`: a stored snapshot that matches its digest but does not decode. */
function snapshotCorrupt(bucket: string, key: string, reason: string): OmniRelayError {
  return new OmniRelayError({
    status: "data-loss",
    code: JetStreamErrorCodes.corrupt,
    message: `The snapshot ${key} in bucket ${bucket} is damaged: ${reason}`,
    metadata: { "jetstream.snapshot": `${bucket}/${key}`, reason },
  });
}
