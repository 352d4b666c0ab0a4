import {
  type Clock,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  silentLogger,
  systemClock,
  type TimerHandle,
} from "@omnirelay/core";
import {
  checkDeterministicRecord,
  checkStateStoreKey,
  type DeterministicRecord,
  type DeterministicStateStore,
} from "@omnirelay/core/deterministic";
import { integerOption } from "@omnirelay/core/wire";
import Database from "better-sqlite3";
import { quoteTableName } from "./errors.js";
import { type Migration, migrate } from "./schema.js";
import {
  RetentionJob,
  resolveRetention,
  type SqliteDeterministicRetention,
  type SqliteDeterministicRetentionSettings,
} from "./state-retention.js";

/** Options of {@link SqliteDeterministicStateStore.open}. */
export interface SqliteDeterministicStateStoreOptions {
  /** Path of the SQLite file (created when missing). Not the event log's file: the log holds its file exclusively. */
  readonly path: string;
  /** Table name; must match `^[A-Za-z_][A-Za-z0-9_]{0,62}$`. @defaultValue 'omnirelay_deterministic_state' */
  readonly table?: string;
  /** How long a write waits for another process's write lock. @defaultValue 5000 */
  readonly busyTimeoutMs?: number;
  /** Deletes old records on a timer; see {@link SqliteDeterministicRetention}. @defaultValue undefined (keep every record) */
  readonly retention?: SqliteDeterministicRetention;
  /** Source of "now" for `maxAgeMs` and of the retention timer. @defaultValue systemClock */
  readonly clock?: Clock;
  /** Where a failed retention run is reported. @defaultValue silentLogger */
  readonly logger?: Logger;
}

/** What one retention run did, from {@link SqliteDeterministicStateStore.prune}. */
export interface SqliteDeterministicPruneResult {
  /** Records deleted. */
  readonly deleted: number;
  /** Records left in the store (all kinds). */
  readonly remaining: number;
}

interface StoredRow {
  readonly kind: string;
  readonly version: number;
  readonly recorded_at: number;
  readonly payload: Buffer;
}

function stateMigrations(table: string, name: string): Migration[] {
  return [
    {
      version: 1,
      description: "deterministic state table",
      up(db) {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${table} (
             key TEXT PRIMARY KEY,
             kind TEXT NOT NULL,
             version INTEGER NOT NULL,
             recorded_at INTEGER NOT NULL,
             payload BLOB NOT NULL
           ) WITHOUT ROWID`,
        );
      },
    },
    {
      version: 2,
      description: "recorded_at index (retention deletes the oldest records)",
      up(db) {
        db.exec(`CREATE INDEX IF NOT EXISTS "${name}_recorded_at" ON ${table} (recorded_at)`);
      },
    },
  ];
}

/**
 * A {@link DeterministicStateStore} in a SQLite table: one connection, WAL, prepared statements. `tryAdd` is
 * `INSERT … ON CONFLICT(key) DO NOTHING`, atomic in SQLite itself, so it is insert-if-absent even across processes
 * sharing the file (only the first writer of a key wins). Keys match exactly.
 */
export class SqliteDeterministicStateStore implements DeterministicStateStore, AsyncDisposable {
  /** The table name. */
  readonly table: string;
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string], StoredRow>;
  private readonly upsert: Database.Statement<[string, string, number, number, Buffer]>;
  private readonly insertIfAbsent: Database.Statement<[string, string, number, number, Buffer]>;
  private closed = false;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly retentionJob: RetentionJob | undefined;
  private retentionTimer: TimerHandle | undefined;
  private pruning: Promise<SqliteDeterministicPruneResult> | undefined;

  private constructor(
    db: Database.Database,
    init: {
      table: string;
      /** `table`, checked and double-quoted for SQL. */
      quoted: string;
      retention: SqliteDeterministicRetentionSettings | undefined;
      clock: Clock;
      logger: Logger;
    },
  ) {
    const { table, quoted } = init;
    this.db = db;
    this.table = table;
    this.clock = init.clock;
    this.logger = init.logger;
    this.retentionJob = init.retention ? new RetentionJob(db, quoted, init.retention) : undefined;
    this.selectOne = db.prepare(`SELECT kind, version, recorded_at, payload FROM ${quoted} WHERE key = ?`);
    this.upsert = db.prepare(
      `INSERT INTO ${quoted} (key, kind, version, recorded_at, payload) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, version = excluded.version,
         recorded_at = excluded.recorded_at, payload = excluded.payload`,
    );
    this.insertIfAbsent = db.prepare(
      `INSERT INTO ${quoted} (key, kind, version, recorded_at, payload) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING`,
    );
  }

  /**
   * Opens (creating or migrating) the store, and starts its retention job when `retention` is given (it runs once at
   * open, before this resolves, then every `retention.intervalMs`).
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`), failed-precondition
   *   `resourcelease.sqlite.schema_too_new`.
   */
  static async open(options: SqliteDeterministicStateStoreOptions): Promise<SqliteDeterministicStateStore> {
    if (typeof options?.path !== "string" || options.path.trim().length === 0) {
      throw OmniRelayError.invalidOption("path", "path is required.");
    }
    const table = options.table ?? "omnirelay_deterministic_state";
    const quoted = quoteTableName(table, "table");
    const busy = integerOption("busyTimeoutMs", options.busyTimeoutMs, { min: 0, fallback: 5000 });
    const retention = resolveRetention(options.retention);
    const db = new Database(options.path, { timeout: busy });
    let store: SqliteDeterministicStateStore;
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      // A WAL is reused, never shrunk, while the file is open: cap what it keeps after a checkpoint.
      db.pragma("journal_size_limit = 67108864");
      migrate(db, `statestore:${table}`, stateMigrations(quoted, table));
      store = new SqliteDeterministicStateStore(db, {
        table,
        quoted,
        retention,
        clock: options.clock ?? systemClock,
        logger: options.logger ?? silentLogger,
      });
    } catch (error) {
      db.close();
      throw error;
    }
    // Once at open, before the store is used: what a crashed process left unpruned goes now. Otherwise a process that
    // restarts more often than the interval (a crash loop, the soak's kill -9 every few minutes) never prunes, and
    // the file grows with every event after all.
    await store.prune();
    store.scheduleRetention();
    return store;
  }

  /** The retention policy in force (validated, with defaults), or `undefined` when the store keeps every record. */
  get retention(): SqliteDeterministicRetentionSettings | undefined {
    return this.retentionJob?.settings;
  }

  /**
   * Runs the retention policy now (the timer runs it every `retention.intervalMs`): deletes selected records older
   * than `maxAgeMs`, then the oldest selected ones beyond `maxRecords`, in batches that yield to the event loop.
   * Deleted rows' pages are reused by later writes, so the file stops growing; it does not shrink. Without a
   * retention policy it deletes nothing. A run already in progress is joined, not repeated.
   * @throws OmniRelayError unavailable `resourcelease.sqlite.closed`.
   */
  async prune(): Promise<SqliteDeterministicPruneResult> {
    this.ensureOpen();
    this.pruning ??= this.runRetention().finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  /** Returns the record at `key`, or `undefined`. @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required`. */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    this.ensureOpen();
    const row = this.selectOne.get(checkStateStoreKey(key));
    if (!row) return undefined;
    return {
      kind: row.kind,
      version: row.version,
      payload: new Uint8Array(row.payload),
      recordedAt: row.recorded_at,
    };
  }

  /**
   * Inserts or replaces the record at `key`.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    this.ensureOpen();
    const r = checkDeterministicRecord(record);
    this.upsert.run(checkStateStoreKey(key), r.kind, r.version, r.recordedAt, Buffer.from(r.payload));
  }

  /**
   * Inserts the record when `key` is absent and returns `true`; returns `false` and changes nothing when present.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` or `.record_invalid`.
   */
  async tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    this.ensureOpen();
    const r = checkDeterministicRecord(record);
    return (
      this.insertIfAbsent.run(checkStateStoreKey(key), r.kind, r.version, r.recordedAt, Buffer.from(r.payload))
        .changes > 0
    );
  }

  /** Number of stored records. */
  count(): number {
    this.ensureOpen();
    const table = `"${this.table}"`;
    return this.db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()?.n ?? 0;
  }

  /** Stops the retention job (after its current batch) and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) this.clock.clearTimeout(this.retentionTimer);
    this.retentionTimer = undefined;
    await this.pruning?.catch(() => undefined);
    this.db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async runRetention(): Promise<SqliteDeterministicPruneResult> {
    const job = this.retentionJob;
    const deleted = job
      ? await job.run(this.clock.now(), async () => {
          await new Promise<void>((resolve) => setImmediate(resolve));
          return !this.closed;
        })
      : 0;
    return { deleted, remaining: this.closed ? 0 : this.count() };
  }

  private scheduleRetention(): void {
    const job = this.retentionJob;
    if (!job || this.closed) return;
    this.retentionTimer = this.clock.setTimeout(() => {
      this.retentionTimer = undefined;
      if (this.closed) return;
      this.prune()
        .then(
          (r) => {
            if (r.deleted > 0) this.logger.debug({ ...r, table: this.table }, "Deterministic store retention ran.");
          },
          (error: unknown) => this.logger.error({ err: error }, "Deterministic store retention failed; retrying."),
        )
        .finally(() => this.scheduleRetention());
    }, job.settings.intervalMs);
  }

  private ensureOpen(): void {
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.sqlite.closed,
        message: "The state store is closed.",
      });
    }
  }
}
