import { randomUUID } from "node:crypto";
import { jetstream, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import {
  checkDeterministicRecord,
  checkUtf8StateStoreKey,
  type DeterministicRecord,
  type DeterministicStateStore,
  decodeDeterministicRecord,
  encodeDeterministicRecord,
} from "@omnirelay/core/deterministic";
import { integerOption, textOption } from "@omnirelay/core/wire";
import { BUCKET_NAME } from "./buckets.js";
import { casRefused } from "./shard-lease.js";

/** Options of {@link JetStreamDeterministicStateStore.open}: give `connection` or `servers`, not both. */
export interface JetStreamDeterministicStateStoreOptions {
  /** An open NATS connection to use; the store neither drains nor closes it. */
  readonly connection?: NatsConnection;
  /** NATS server URLs for a connection the store opens and closes itself. */
  readonly servers?: string | readonly string[];
  /**
   * The KV bucket of the records; created when absent (history 1, file storage, `replicas`). An existing bucket keeps
   * its own settings. Letters, digits, `_`, `-`. @defaultValue "OMNIRELAY_DETERMINISTIC"
   */
  readonly bucket?: string;
  /** Replicas of a bucket the store creates: 3 in production (a write is then stored on a quorum). @defaultValue 1 */
  readonly replicas?: number;
  /**
   * Age after which records of a bucket the store creates expire (the bucket's max age), so it stops growing. A replay
   * of an event whose records expired runs its effect again: keep records longer than the oldest event a takeover
   * can replay. @defaultValue undefined (records never expire)
   */
  readonly ttlMs?: number;
  /** How long one KV request may take before it fails with `store_unavailable`. @defaultValue 5000 */
  readonly timeoutMs?: number;
}

const STORE = "jetstream";

/**
 * A {@link DeterministicStateStore} on a NATS JetStream KV bucket, which several dispatcher nodes can share: one KV
 * key per record. `tryAdd` is the bucket's `create` (a put that expects the key to have no value, checked by the
 * server), so of all the nodes adding a key at once exactly one wins. KV keys allow only a few characters, so a key
 * is stored as the base64url of its UTF-8: keys match exactly (a key with a lone surrogate is refused, as it would
 * collide with U+FFFD). Each value carries the id of the write that stored it, so a `create` the client sent again
 * after a timeout still reports its own win. Durability is JetStream's: acknowledged before the server fsyncs
 * (see the package README).
 */
export class JetStreamDeterministicStateStore implements DeterministicStateStore, AsyncDisposable {
  /** The bucket's name. */
  readonly bucket: string;
  private readonly kv: KV;
  private readonly nc: NatsConnection;
  private readonly owned: boolean;
  private closed = false;

  private constructor(kv: KV, bucket: string, connection: { readonly nc: NatsConnection; readonly owned: boolean }) {
    this.kv = kv;
    this.bucket = bucket;
    this.nc = connection.nc;
    this.owned = connection.owned;
  }

  /**
   * Checks the options, connects (with `servers`) and opens or creates the bucket.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`); unavailable
   *   `resourcelease.deterministic.store_unavailable` when NATS or JetStream does not answer.
   */
  static async open(options: JetStreamDeterministicStateStoreOptions): Promise<JetStreamDeterministicStateStore> {
    if (options === null || typeof options !== "object") {
      throw OmniRelayError.invalidOption("options", "JetStreamDeterministicStateStore.open needs an options object.");
    }
    const servers = options.servers === undefined ? [] : [options.servers].flat();
    if ((options.connection === undefined) === (servers.length === 0)) {
      throw OmniRelayError.invalidOption("connection", "Give exactly one of 'connection' and 'servers'.");
    }
    for (const [i, server] of servers.entries()) textOption(`servers[${i}]`, server, { max: 2000 });
    const bucket = textOption("bucket", options.bucket, { max: 200, fallback: "OMNIRELAY_DETERMINISTIC" });
    if (!BUCKET_NAME.test(bucket)) {
      throw OmniRelayError.invalidOption("bucket", `Option 'bucket' must match ${BUCKET_NAME.source}.`);
    }
    const replicas = integerOption("replicas", options.replicas, { min: 1, max: 5, fallback: 1 });
    const ttlMs = options.ttlMs == null ? undefined : integerOption("ttlMs", options.ttlMs, { min: 1000 });
    const timeout = integerOption("timeoutMs", options.timeoutMs, { min: 1, fallback: 5000 });
    let nc = options.connection;
    try {
      nc ??= await connect({ servers: servers as string[], timeout });
      const kv = await new Kvm(jetstream(nc, { timeout })).create(bucket, {
        history: 1,
        replicas,
        storage: StorageType.File,
        ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
      });
      return new JetStreamDeterministicStateStore(kv, bucket, { nc, owned: options.connection === undefined });
    } catch (error) {
      if (options.connection === undefined) await nc?.close().catch(() => undefined);
      throw unavailable(error, "open");
    }
  }

  /**
   * Returns the record at `key`, or `undefined`.
   * @throws OmniRelayError invalid-argument `.key_required` / `.key_invalid`; data-loss `.store_corrupt` for a value
   *   that is not a record; unavailable `.store_unavailable` or `.store_closed` (codes of `ErrorCodes.deterministic`).
   */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const stored = storedKey(key);
    const entry = await this.run("get", () => this.kv.get(stored));
    if (entry === null || entry.operation !== "PUT") return undefined;
    const decoded = decodeDeterministicRecord(entry.value);
    if (decoded === undefined) {
      throw new OmniRelayError({
        status: "data-loss",
        code: ErrorCodes.deterministic.storeCorrupt,
        message: `The value of '${stored}' in KV bucket ${this.bucket} is not a deterministic record.`,
        metadata: { store: STORE, key },
      });
    }
    const { kind, version, payload, recordedAt } = decoded;
    return { kind, version, payload, recordedAt };
  }

  /**
   * Inserts or replaces the record at `key`.
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; unavailable
   *   `.store_unavailable` or `.store_closed`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    const stored = storedKey(key);
    const value = encodeDeterministicRecord(checkDeterministicRecord(record), randomUUID());
    await this.run("set", () => this.kv.put(stored, value));
  }

  /**
   * Inserts the record when `key` has no value and returns `true`; returns `false` and changes nothing when it has.
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; unavailable
   *   `.store_unavailable` (the record may or may not be stored) or `.store_closed`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    const stored = storedKey(key);
    const writer = randomUUID();
    const value = encodeDeterministicRecord(checkDeterministicRecord(record), writer);
    try {
      await this.run("tryAdd", () => this.kv.create(stored, value));
      return true;
    } catch (error) {
      if (!(error instanceof OmniRelayError && casRefused(error.cause))) throw error;
    }
    // Refused: normally another writer's value; ours only when this create had already landed once.
    const entry = await this.run("tryAdd", () => this.kv.get(stored));
    return entry?.operation === "PUT" && decodeDeterministicRecord(entry.value)?.writer === writer;
  }

  /** Stops the store: later calls fail with `store_closed`. Closes the connection it opened. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) await this.nc.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.deterministic.storeClosed,
        message: "The JetStream state store is closed.",
        metadata: { store: STORE },
      });
    }
    try {
      return await call();
    } catch (error) {
      throw unavailable(error, operation);
    }
  }
}

/** A key as a KV key: base64url of its UTF-8 (KV keys allow only `[-/_=.A-Za-z0-9]`). */
function storedKey(value: unknown): string {
  const key = checkUtf8StateStoreKey(value);
  return Buffer.from(key, "utf8").toString("base64url");
}

function unavailable(error: unknown, operation: string): OmniRelayError {
  const reason = error instanceof Error ? error.message : String(error);
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.deterministic.storeUnavailable,
    message: `JetStream KV ${operation} failed: ${reason}`,
    metadata: { store: STORE, operation },
    cause: error,
  });
}
