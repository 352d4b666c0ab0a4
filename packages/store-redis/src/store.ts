import { randomUUID } from "node:crypto";
import { ErrorCodes, type Logger, OmniRelayError, silentLogger } from "@omnirelay/core";
import {
  checkDeterministicRecord,
  checkUtf8StateStoreKey as checkKey,
  type DeterministicRecord,
  type DeterministicStateStore,
  decodeDeterministicRecord as decodeRecord,
  encodeDeterministicRecord,
} from "@omnirelay/core/deterministic";
import { integerOption, textOption } from "@omnirelay/core/wire";
import { type Cluster, Redis } from "ioredis";

const STORE = "redis";
const DEFAULT_PREFIX = "omnirelay:deterministic:";

/** Largest payload, in bytes (16 MiB, as the PostgreSQL store): Redis blocks every client while it copies a value. */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Checks a record as the contract asks, with a payload of at most {@link MAX_PAYLOAD_BYTES}.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.record_invalid` naming the bad field.
 */
function checkRecord(record: DeterministicRecord): DeterministicRecord {
  checkDeterministicRecord(record);
  if (record.payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.recordInvalid,
      message: `Record payload is ${record.payload.byteLength} bytes; the Redis store keeps at most ${MAX_PAYLOAD_BYTES}.`,
      metadata: { field: "payload", maxBytes: String(MAX_PAYLOAD_BYTES) },
    });
  }
  return record;
}

/** The error of a value that is not a record: another program's value, another Redis type, or damage. */
function corrupt(at: { full: string; key: string; operation?: string }, cause?: unknown): OmniRelayError {
  const { full, key, operation } = at;
  return new OmniRelayError({
    status: "data-loss",
    code: ErrorCodes.deterministic.storeCorrupt,
    message: `The Redis value at '${full}' is not a deterministic record.`,
    metadata: { store: STORE, key, ...(operation === undefined ? {} : { operation }) },
    cause,
  });
}

/** A record as one Redis string (see `encodeDeterministicRecord`). */
function encodeRecord(record: DeterministicRecord, writer: string): Buffer {
  const bytes = encodeDeterministicRecord(record, writer);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Options of {@link RedisDeterministicStateStore.open}: give `client` or `url`, not both. */
export interface RedisDeterministicStateStoreOptions {
  /**
   * An ioredis client (`Redis` or `Cluster`) that you own: the store uses it as configured and never closes it. Its
   * own `keyPrefix`, if any, applies before the store's.
   */
  readonly client?: Redis | Cluster;
  /** `redis://[user:password@]host:port/db` (or `rediss://`): the store opens its own connection and closes it. */
  readonly url?: string;
  /**
   * Put in front of every key, so records share a database with other data, and stores with different prefixes
   * are independent. Surrounding whitespace is dropped. @defaultValue `"omnirelay:deterministic:"`
   */
  readonly keyPrefix?: string;
  /**
   * Records expire this long after they were written (`SET … PX`), so the store stops growing. A replay of an event
   * whose records expired runs its effect again: keep records longer than the oldest event a takeover can replay.
   * @defaultValue undefined (records never expire)
   */
  readonly ttlMs?: number;
  /**
   * With `url`: how long a connection attempt or a command may take before it fails with
   * `resourcelease.deterministic.store_unavailable`. @defaultValue 5000
   */
  readonly commandTimeoutMs?: number;
  /** Where the store's own connection reports connection errors (it keeps reconnecting). @defaultValue silentLogger */
  readonly logger?: Logger;
}

/**
 * A {@link DeterministicStateStore} on Redis, which several dispatcher nodes can share: one Redis string per record
 * at `keyPrefix + key`. `tryAdd` is one `SET key value NX`, atomic in Redis itself, so of all the nodes adding a key
 * at once exactly one wins (a record is one key, so no script is needed). Keys match exactly: Redis keys are bytes,
 * and a key is its UTF-8 (a key with a lone surrogate is refused, since it would collide with U+FFFD).
 *
 * Each value carries the id of the write that stored it: when ioredis resends a `SET NX` after a reconnect and the
 * first send had landed, `tryAdd` still reports the win. A call that rejects with `store_unavailable` may or may not
 * have stored its record. Durability is Redis's own: without AOF (`appendonly yes`, `appendfsync always` or
 * `everysec`) a Redis restart forgets every record, and a replica promoted after a failover may miss the newest
 * ones, so an effect could run again; see the README.
 */
export class RedisDeterministicStateStore implements DeterministicStateStore, AsyncDisposable {
  /** Largest payload, in bytes (16 MiB, as the PostgreSQL store); a larger one is `record_invalid`. */
  static readonly maxPayloadBytes = MAX_PAYLOAD_BYTES;
  /** The prefix in front of every key. */
  readonly keyPrefix: string;
  /** How long records live, or `undefined` when they never expire. */
  readonly ttlMs: number | undefined;
  private readonly client: Redis | Cluster;
  private readonly owned: boolean;
  private closed = false;

  private constructor(client: Redis | Cluster, init: { owned: boolean; keyPrefix: string; ttlMs?: number }) {
    this.client = client;
    this.owned = init.owned;
    this.keyPrefix = init.keyPrefix;
    this.ttlMs = init.ttlMs;
  }

  /**
   * Checks the options, connects (with `url`) and pings Redis.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`); unavailable
   *   `resourcelease.deterministic.store_unavailable` when Redis does not answer (the cause attached).
   */
  static async open(options: RedisDeterministicStateStoreOptions): Promise<RedisDeterministicStateStore> {
    const keyPrefix = textOption("keyPrefix", options?.keyPrefix, { max: 200, fallback: DEFAULT_PREFIX });
    const hasClient = options?.client !== undefined && options.client !== null;
    const hasUrl = options?.url !== undefined && options.url !== null;
    if (hasClient === hasUrl) {
      throw OmniRelayError.invalidOption(hasClient ? "url" : "client", "Give either client or url, not both.");
    }
    if (hasClient && typeof (options.client as Redis).getBuffer !== "function") {
      throw OmniRelayError.invalidOption("client", "client must be an ioredis Redis or Cluster.");
    }
    const timeoutMs = integerOption("commandTimeoutMs", options.commandTimeoutMs, { min: 1, fallback: 5000 });
    const ttlMs = options.ttlMs == null ? undefined : integerOption("ttlMs", options.ttlMs, { min: 1 });
    const client = options.client ?? connect(options, timeoutMs);
    const store = new RedisDeterministicStateStore(client, { owned: !hasClient, keyPrefix, ttlMs });
    try {
      await store.run("ping", () => store.client.ping());
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Returns the record at `key`, or `undefined`.
   * @throws OmniRelayError invalid-argument `.key_required` / `.key_invalid`; data-loss `.store_corrupt` for a value
   *   that is not a record (a string that does not decode, or another Redis type such as a list or hash); unavailable
   *   `.store_unavailable` or `.store_closed` (codes of `ErrorCodes.deterministic`).
   */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const full = this.keyPrefix + checkKey(key);
    const value = await this.run("get", () => this.client.getBuffer(full), key);
    if (value === null) return undefined;
    const decoded = decodeRecord(value);
    if (decoded === undefined) throw corrupt({ full, key });
    const { kind, version, payload, recordedAt } = decoded;
    return { kind, version, payload, recordedAt };
  }

  /**
   * Inserts or replaces the record at `key` (a plain `SET`; with `ttlMs`, its clock starts again).
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; unavailable
   *   `.store_unavailable` or `.store_closed`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    const full = this.keyPrefix + checkKey(key);
    const value = encodeRecord(checkRecord(record), randomUUID());
    const ttl = this.ttlMs;
    await this.run("set", () =>
      ttl === undefined ? this.client.set(full, value) : this.client.set(full, value, "PX", ttl),
    );
  }

  /**
   * Inserts the record when `key` is absent (`SET … NX`) and returns `true`; returns `false` and changes nothing when
   * it is present.
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; data-loss
   *   `.store_corrupt` when the key holds another Redis type; unavailable `.store_unavailable` (the record may or may
   *   not be stored) or `.store_closed`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    const full = this.keyPrefix + checkKey(key);
    const writer = randomUUID();
    const value = encodeRecord(checkRecord(record), writer);
    const ttl = this.ttlMs;
    const reply = await this.run("tryAdd", () =>
      ttl === undefined ? this.client.set(full, value, "NX") : this.client.set(full, value, "PX", ttl, "NX"),
    );
    if (reply === "OK") return true;
    // Refused: normally another writer's value. It is ours only when ioredis resent this SET after a reconnect and
    // the first send had already landed; that is still this call's win.
    const stored = await this.run("tryAdd", () => this.client.getBuffer(full), key);
    return stored !== null && decodeRecord(stored)?.writer === writer;
  }

  /**
   * Stops the store: later calls fail with `store_closed`. Closes the connection it opened from `url` (a `client` you
   * gave stays open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.owned) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Runs one Redis command; a failure becomes `store_unavailable` with the Redis error as the cause, except a
   * `WRONGTYPE` reply (the key at `key` holds a list, hash or other non-string): that is `store_corrupt`, since no
   * retry can read it as a record.
   */
  private async run<T>(operation: string, command: () => Promise<T>, key?: string): Promise<T> {
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.deterministic.storeClosed,
        message: "The Redis state store is closed.",
        metadata: { store: STORE },
      });
    }
    try {
      return await command();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (key !== undefined && reason.startsWith("WRONGTYPE")) {
        throw corrupt({ full: this.keyPrefix + key, key, operation }, error);
      }
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.deterministic.storeUnavailable,
        message: `Redis ${operation} failed: ${reason}`,
        metadata: { store: STORE, operation },
        cause: error,
      });
    }
  }
}

/** The store's own connection: bounded waits, so a down Redis fails calls instead of queueing them for ever. */
function connect(options: RedisDeterministicStateStoreOptions, timeoutMs: number): Redis {
  const url = textOption("url", options.url, { max: 2048 });
  if (!/^rediss?:\/\//.test(url))
    throw OmniRelayError.invalidOption("url", "url must start with redis:// or rediss://.");
  const logger = options.logger ?? silentLogger;
  const client = new Redis(url, {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // A command waits through at most one failed reconnect, then fails (the caller decides whether to retry).
    maxRetriesPerRequest: 1,
  });
  client.on("error", (error: unknown) => logger.warn({ err: error, store: STORE }, "Redis connection error."));
  return client;
}
