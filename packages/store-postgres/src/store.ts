import { type Clock, ErrorCodes, type Logger, OmniRelayError, silentLogger, systemClock } from "@omnirelay/core";
import type { DeterministicRecord, DeterministicStateStore } from "@omnirelay/core/deterministic";
import { integerOption, textOption } from "@omnirelay/core/wire";
import pg from "pg";
import { queryFailure } from "./failure.js";
import { identifierOption, quoteIdentifier } from "./names.js";
import { type PostgresPruneOptions, pruneBefore, resolvePrune } from "./prune.js";
import { checkKey, checkRecord, MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, type Row, rowToRecord } from "./record.js";
import { createTableIfAbsent } from "./schema.js";

/** Options of {@link PostgresDeterministicStateStore.open}: give `pool` or `connectionString`, not both. */
export interface PostgresDeterministicStateStoreOptions {
  /** A `pg.Pool` that you own: the store runs its queries on it and never ends it. */
  readonly pool?: pg.Pool;
  /** `postgres://user:password@host:port/database`: the store opens its own pool, and `close()` ends it. */
  readonly connectionString?: string;
  /** Schema of the table; created when absent (needs the CREATE privilege then). @defaultValue `"public"` */
  readonly schema?: string;
  /** Table of the records; created when absent. Any name up to 63 bytes: it is quoted. @defaultValue `"omnirelay_deterministic_state"` */
  readonly table?: string;
  /** With `connectionString`: most connections the store's pool opens. @defaultValue 10 */
  readonly maxConnections?: number;
  /** With `connectionString`: how long opening a connection may take before the call fails. @defaultValue 5000 */
  readonly connectTimeoutMs?: number;
  /**
   * With `connectionString`: how long one query may take before the call fails with `store_unavailable`, as the
   * driver's `query_timeout` (a server that stopped answering) and the server's `statement_timeout` (a statement
   * that runs or waits for a lock too long). The connections also send TCP keepalives. @defaultValue 5000
   */
  readonly queryTimeoutMs?: number;
  /** Where the store's own pool reports errors of idle connections. @defaultValue silentLogger */
  readonly logger?: Logger;
  /** Source of "now" for {@link PostgresDeterministicStateStore.prune}. @defaultValue systemClock */
  readonly clock?: Clock;
}

const STORE = "postgres";

/**
 * A {@link DeterministicStateStore} in a PostgreSQL table, which several dispatcher nodes can share. `tryAdd` is
 * `INSERT … ON CONFLICT (key) DO NOTHING`: of all the nodes adding a key at once exactly one inserts, the others
 * wait for its transaction and insert nothing. A committed insert is as durable as the server's commits
 * (`synchronous_commit`, and synchronous replicas if you run them). Keys match exactly (`text COLLATE "C"`; a key
 * with a NUL character or a lone surrogate is refused, since text cannot keep it; so is one longer than
 * {@link PostgresDeterministicStateStore.maxKeyBytes}). A payload holds at most
 * {@link PostgresDeterministicStateStore.maxPayloadBytes}, and every row read is checked as a record.
 *
 * Columns: `key text COLLATE "C" PRIMARY KEY, kind text, version bigint, recorded_at double precision, payload bytea`,
 * with an index on `recorded_at` (see {@link PostgresDeterministicStateStore.prune}).
 */
export class PostgresDeterministicStateStore implements DeterministicStateStore, AsyncDisposable {
  /** Longest key, in UTF-8 bytes (2,000; the primary-key index holds no much longer one); longer is `key_invalid`. */
  static readonly maxKeyBytes = MAX_KEY_BYTES;
  /** Largest payload, in bytes (16 MiB, as the Redis store); a larger one is `record_invalid`. */
  static readonly maxPayloadBytes = MAX_PAYLOAD_BYTES;
  /** The pool queries run on (yours, or the store's own). */
  readonly pool: pg.Pool;
  /** The schema name, unquoted. */
  readonly schema: string;
  /** The table name, unquoted. */
  readonly table: string;
  /** `"schema"."table"`, quoted for SQL. */
  readonly qualifiedTable: string;
  private readonly owned: boolean;
  private readonly clock: Clock;
  private readonly sql: { get: string; set: string; tryAdd: string };
  private closed = false;

  private constructor(pool: pg.Pool, init: { owned: boolean; schema: string; table: string; clock?: Clock }) {
    this.pool = pool;
    this.owned = init.owned;
    this.clock = init.clock ?? systemClock;
    this.schema = init.schema;
    this.table = init.table;
    const t = `${quoteIdentifier(init.schema)}.${quoteIdentifier(init.table)}`;
    this.qualifiedTable = t;
    const insert = `INSERT INTO ${t} (key, kind, version, recorded_at, payload) VALUES ($1, $2, $3, $4, $5)`;
    this.sql = {
      // A payload too large to read is left on the server (node-postgres would read it as hex text, twice its size).
      get: `SELECT kind, version, recorded_at, octet_length(payload) AS payload_bytes,
        CASE WHEN octet_length(payload) <= ${MAX_PAYLOAD_BYTES} THEN payload END AS payload FROM ${t} WHERE key = $1`,
      set: `${insert} ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, version = excluded.version,
        recorded_at = excluded.recorded_at, payload = excluded.payload`,
      tryAdd: `${insert} ON CONFLICT (key) DO NOTHING`,
    };
  }

  /**
   * Checks the options, connects (with `connectionString`) and creates the schema and table when absent.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`); unavailable
   *   `resourcelease.deterministic.store_unavailable` when the server cannot be reached or refuses (the cause attached).
   */
  static async open(options: PostgresDeterministicStateStoreOptions): Promise<PostgresDeterministicStateStore> {
    const schema = identifierOption("schema", options?.schema, "public");
    const table = identifierOption("table", options?.table, "omnirelay_deterministic_state");
    const hasPool = options?.pool !== undefined && options.pool !== null;
    const hasUrl = options?.connectionString !== undefined && options.connectionString !== null;
    if (hasPool === hasUrl) {
      const option = hasPool ? "connectionString" : "pool";
      throw OmniRelayError.invalidOption(option, "Give either pool or connectionString, not both.");
    }
    if (hasPool && typeof options.pool?.query !== "function") {
      throw OmniRelayError.invalidOption("pool", "pool must be a pg.Pool.");
    }
    const max = integerOption("maxConnections", options.maxConnections, { min: 1, max: 1000, fallback: 10 });
    const timeoutMs = integerOption("connectTimeoutMs", options.connectTimeoutMs, { min: 1, fallback: 5000 });
    const queryMs = integerOption("queryTimeoutMs", options.queryTimeoutMs, {
      min: 1,
      max: 2 ** 31 - 1,
      fallback: 5000,
    });
    const pool =
      options.pool ??
      createPool(options, {
        max,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: queryMs,
        statement_timeout: queryMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      });
    const init = { owned: !hasPool, schema, table, clock: options.clock };
    const store = new PostgresDeterministicStateStore(pool, init);
    try {
      await store.run("createTable", () => createTableIfAbsent(pool, { schema, qualifiedTable: store.qualifiedTable }));
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Returns the record at `key`, or `undefined`.
   * @throws OmniRelayError invalid-argument `.key_required` / `.key_invalid`; data-loss `.store_corrupt` (metadata
   *   `field`) for a row that is not a record (changed by something else, or a payload larger than
   *   {@link PostgresDeterministicStateStore.maxPayloadBytes}); unavailable `.store_unavailable` or `.store_closed`
   *   (codes of `ErrorCodes.deterministic`).
   */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const values = [checkKey(key)];
    const result = await this.run("get", () => this.pool.query<Row>(this.sql.get, values));
    const row = result.rows[0];
    return row === undefined ? undefined : rowToRecord(row, { key, table: this.qualifiedTable });
  }

  /**
   * Inserts or replaces the record at `key`.
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; unavailable
   *   `.store_unavailable` or `.store_closed`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    const values = rowValues(checkKey(key), checkRecord(record));
    await this.run("set", () => this.pool.query(this.sql.set, values));
  }

  /**
   * Inserts the record when `key` is absent (`INSERT … ON CONFLICT DO NOTHING`) and returns `true`; returns `false`
   * and changes nothing when it is present.
   * @throws OmniRelayError invalid-argument `.key_required`, `.key_invalid` or `.record_invalid`; unavailable
   *   `.store_unavailable` (if the connection broke during the commit, the record may or may not be stored) or
   *   `.store_closed`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    const values = rowValues(checkKey(key), checkRecord(record));
    const result = await this.run("tryAdd", () => this.pool.query(this.sql.tryAdd, values));
    return result.rowCount === 1;
  }

  /**
   * Retention: deletes the records of the given kinds (by default the coordinator's effects and version gates) whose
   * `recordedAt` is older than `maxAgeMs`, in batches, and returns how many it deleted. Run it from your own
   * scheduler, on one node or several (concurrent runs only share the work). A deleted effect no longer guards its
   * event: keep `maxAgeMs` longer than any replay can reach back.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; unavailable `.store_unavailable` or
   *   `.store_closed`.
   */
  async prune(options: PostgresPruneOptions): Promise<{ deleted: number }> {
    const settings = resolvePrune(options);
    const cutoff = this.clock.now() - settings.maxAgeMs;
    const deleted = await this.run("prune", () => pruneBefore(this.pool, this.qualifiedTable, { ...settings, cutoff }));
    return { deleted };
  }

  /** Stops the store: later calls fail with `store_closed`. Ends the pool it opened (a `pool` you gave stays). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) await this.pool.end().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Runs one query; a failure becomes `store_unavailable` (or, for an input the server refuses, `record_invalid` /
   * `key_invalid`) with the driver's error as the cause.
   */
  private async run<T>(operation: string, query: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.deterministic.storeClosed,
        message: "The PostgreSQL state store is closed.",
        metadata: { store: STORE },
      });
    }
    try {
      return await query();
    } catch (error) {
      throw queryFailure(error, { operation, table: this.qualifiedTable });
    }
  }
}

function rowValues(key: string, record: DeterministicRecord): unknown[] {
  return [key, record.kind, record.version, record.recordedAt, Buffer.from(record.payload)];
}

/** The store's own pool: bounded connection waits and queries, and idle-connection errors logged instead of crashing. */
function createPool(options: PostgresDeterministicStateStoreOptions, limits: pg.PoolConfig): pg.Pool {
  const connectionString = textOption("connectionString", options.connectionString, { max: 4096 });
  if (!/^postgres(ql)?:\/\//.test(connectionString)) {
    throw OmniRelayError.invalidOption("connectionString", "connectionString must start with postgres://.");
  }
  const logger = options.logger ?? silentLogger;
  const pool = new pg.Pool({ ...limits, connectionString });
  pool.on("error", (error) => logger.warn({ err: error, store: STORE }, "PostgreSQL idle connection error."));
  return pool;
}
