import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import type BetterSqlite3 from "better-sqlite3";

type Database = BetterSqlite3.Database;

/** One forward migration of a component's tables. `up` runs inside the migration transaction. Internal. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  up(db: Database): void;
}

/** Name of the table that records the schema version of every component stored in the file. */
export const SCHEMA_VERSION_TABLE = "omnirelay_schema_versions";

/** Result of {@link migrate}. Internal. */
export interface MigrationResult {
  readonly from: number;
  readonly to: number;
}

/**
 * Brings `component`'s tables to the newest version by running, in one immediate transaction, every migration
 * above the recorded version. Two processes migrating at once are serialised by the write lock; the loser sees the
 * new version and does nothing. Internal.
 * @throws OmniRelayError failed-precondition `resourcelease.sqlite.schema_too_new` when the file is newer than
 *   this code.
 */
export function migrate(db: Database, component: string, migrations: readonly Migration[]): MigrationResult {
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${SCHEMA_VERSION_TABLE} (component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at INTEGER NOT NULL)`,
  );
  const read = db.prepare<[string], { version: number }>(
    `SELECT version FROM ${SCHEMA_VERSION_TABLE} WHERE component = ?`,
  );
  const write = db.prepare(
    `INSERT INTO ${SCHEMA_VERSION_TABLE} (component, version, applied_at) VALUES (?, ?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at`,
  );
  const run = db.transaction((): MigrationResult => {
    const from = read.get(component)?.version ?? 0;
    const supported = migrations.at(-1)?.version ?? 0;
    if (from > supported) {
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.sqlite.schemaTooNew,
        message: `'${component}' is at schema version ${from}; this version of @omnirelay/replicator-sqlite supports up to ${supported}. Upgrade the package.`,
        metadata: { component, version: String(from), supported: String(supported) },
      });
    }
    let to = from;
    for (const m of migrations) {
      if (m.version <= from) continue;
      m.up(db);
      to = m.version;
    }
    if (to !== from) write.run(component, to, Date.now());
    return { from, to };
  });
  return run.immediate();
}

/** Reads the recorded schema version of `component` (0 when none). */
export function schemaVersion(db: Database, component: string): number {
  const exists = db
    .prepare<[string], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?")
    .get(SCHEMA_VERSION_TABLE);
  if (!exists?.n) return 0;
  return (
    db
      .prepare<[string], { version: number }>(`SELECT version FROM ${SCHEMA_VERSION_TABLE} WHERE component = ?`)
      .get(component)?.version ?? 0
  );
}

/** Quoted table names of one event log. Internal. */
export interface LogTables {
  /** e.g. `"resourcelease_events"` */
  readonly events: string;
  /** e.g. `"resourcelease_events_snapshots"` */
  readonly snapshots: string;
  /** e.g. `"resourcelease_events_snapshot_parts"`: the items of a snapshot, a few thousand per row. */
  readonly snapshotParts: string;
}

/** Names of the log tables for a validated base name (already checked against the identifier pattern). Internal. */
export function logTables(name: string): LogTables {
  return { events: `"${name}"`, snapshots: `"${name}_snapshots"`, snapshotParts: `"${name}_snapshot_parts"` };
}

/**
 * The event-log migrations. Version 1: events; version 2: snapshots; version 3: snapshot parts; version 4: the `json`
 * columns become `data`, and rows written from then on hold an event's binary form (a BLOB) instead of its JSON
 * text. Rows written before keep their JSON and are still read, so the migration rewrites no row. Version 5: items may
 * carry `notBefore` and `priority` (new payload flag bits in binary rows, new fields in JSON ones); a version 4 row
 * reads unchanged, so the migration rewrites nothing: the version number is what stops an older release, whose reader
 * would drop those fields, from opening the file. Version 6: events carry `previousHash` (the hash chain), in binary
 * row format 2 and in JSON rows' envelope; older rows read unchanged, and the version stops an older release, which
 * would refuse format 2 rows (or drop the field), from opening the file. Internal.
 */
export function logMigrations(tables: LogTables): Migration[] {
  return [
    {
      version: 1,
      description: "events table",
      up(db) {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${tables.events} (
             sequence INTEGER PRIMARY KEY,
             event_type INTEGER NOT NULL,
             timestamp INTEGER NOT NULL,
             json TEXT NOT NULL,
             checksum TEXT NOT NULL
           )`,
        );
      },
    },
    {
      version: 2,
      description: "snapshots table",
      up(db) {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${tables.snapshots} (
             sequence INTEGER PRIMARY KEY,
             created_at INTEGER NOT NULL,
             json TEXT NOT NULL,
             checksum TEXT NOT NULL
           )`,
        );
      },
    },
    {
      version: 3,
      description: "snapshot parts table",
      up(db) {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${tables.snapshotParts} (
             sequence INTEGER NOT NULL,
             part INTEGER NOT NULL,
             json TEXT NOT NULL,
             checksum TEXT NOT NULL,
             PRIMARY KEY (sequence, part)
           )`,
        );
      },
    },
    {
      version: 4,
      description: "binary rows: the json columns become data",
      up(db) {
        for (const table of [tables.events, tables.snapshots, tables.snapshotParts]) {
          db.exec(`ALTER TABLE ${table} RENAME COLUMN json TO data`);
        }
      },
    },
    {
      version: 5,
      description: "items carry notBefore and priority (payload flag bits); no row changes",
      up(db) {
        // Checks the tables a version 4 file has, so a half-made file fails here, inside the transaction.
        for (const table of [tables.events, tables.snapshots, tables.snapshotParts]) {
          db.prepare(`SELECT data FROM ${table} LIMIT 0`).all();
        }
      },
    },
    {
      version: 6,
      description: "events carry previousHash (binary row format 2); no row changes",
      up(db) {
        for (const table of [tables.events, tables.snapshots, tables.snapshotParts]) {
          db.prepare(`SELECT data FROM ${table} LIMIT 0`).all();
        }
      },
    },
  ];
}
