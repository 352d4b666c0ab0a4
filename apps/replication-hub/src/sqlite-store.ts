import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import {
  parseSourceKey,
  type ReplicationHubLog,
  type ReplicationHubStore,
  type ReplicationSourceId,
  sourceKey,
} from "@omnirelay/replicator-grpc";
import { type SqliteDurability, SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { DEFAULT_MAX_SOURCES } from "./config.js";

/** Options of {@link SqliteReplicationHubStore}. */
export interface SqliteReplicationHubStoreOptions {
  /** Directory holding one SQLite file per source (created when missing). Required. */
  readonly dataDir: string;
  /** When an append counts as stored, and so when the hub acknowledges it. @defaultValue 'batched' */
  readonly durability?: SqliteDurability;
  /**
   * Most sources with an open log. Each costs a writer thread, about 16 MiB of memory and 6 file descriptors, and a
   * hello naming a new source creates one, so without a cap any caller allowed to publish as `*` (or any caller at
   * all with `--allow-unauthenticated`) could exhaust the hub. A new source past the cap is refused; a source that
   * already has a file is always opened, so the cap never hides stored events. @defaultValue 256
   */
  readonly maxSources?: number;
}

const SUFFIX = ".db";
/**
 * The longest key kept as `<key>.db` in `dataDir`: SQLite and the high-water record add companions up to
 * `.db.hwm.<pid>.<12 hex>.tmp` (29 characters after `.db` with a 7-digit pid), and a file name has at most 255 bytes.
 * Ids are ASCII, so characters are bytes.
 */
const FLAT_KEY_MAX = 255 - SUFFIX.length - 29;
/** A longer key (a long node id with a long shard) lives at `<nodeId>@/<shard>.db`, which always fits. */
const DIR_MARK = "@";

/**
 * The hub's store on SQLite: one `SqliteResourceLeaseReplicator` file per source, named `<nodeId>[@<shard>].db`
 * in `dataDir` (`<nodeId>@/<shard>.db` when that name would be too long for the file system). Each file is locked
 * exclusively, so two hub processes cannot write the same directory. A source's checkpoint is its file's last
 * sequence number, so it survives restarts (and `kill -9`: acknowledged means committed).
 */
export class SqliteReplicationHubStore implements ReplicationHubStore {
  private readonly dataDir: string;
  private readonly durability: SqliteDurability;
  private readonly maxSources: number;
  private readonly logs = new Map<string, SqliteResourceLeaseReplicator>();
  /** Keys of new sources whose log is being created: they count against `maxSources` before they are open. */
  private readonly creating = new Set<string>();

  constructor(options: SqliteReplicationHubStoreOptions) {
    this.dataDir = options.dataDir;
    this.durability = options.durability ?? "batched";
    this.maxSources = options.maxSources ?? DEFAULT_MAX_SOURCES;
  }

  /** The file of `source`. */
  pathOf(source: ReplicationSourceId): string {
    return join(this.dataDir, relativePath(source));
  }

  /**
   * @throws OmniRelayError resource-exhausted `resourcelease.replication.grpc.store_failed` (metadata
   *   `replication.source`, `limit`) for a source without a file when `maxSources` logs are open or being created.
   */
  async open(source: ReplicationSourceId): Promise<ReplicationHubLog> {
    const key = sourceKey(source);
    const path = this.pathOf(source);
    const isNew = !this.logs.has(key) && !existsSync(path);
    if (isNew) {
      if (this.logs.size + this.creating.size >= this.maxSources) throw tooManySources(key, this.maxSources);
      this.creating.add(key);
    }
    try {
      await mkdir(join(path, ".."), { recursive: true });
      const log = await SqliteResourceLeaseReplicator.open({ path, durability: this.durability });
      this.logs.set(key, log);
      return log;
    } finally {
      this.creating.delete(key);
    }
  }

  /**
   * Copies every open source log into `toDir` (same file names) with SQLite's online backup, while the hub keeps
   * serving. The files are locked exclusively, so an outside `sqlite3 .backup` cannot read them: use this. Returns
   * the written paths.
   */
  async backup(toDir: string): Promise<string[]> {
    await mkdir(toDir, { recursive: true });
    const written: string[] = [];
    for (const [key, log] of this.logs) {
      const source = parseSourceKey(key) as ReplicationSourceId;
      const path = join(toDir, relativePath(source));
      await mkdir(join(path, ".."), { recursive: true });
      await log.backup(path);
      written.push(path);
    }
    return written;
  }

  async list(): Promise<readonly ReplicationSourceId[]> {
    await mkdir(this.dataDir, { recursive: true });
    const keys: string[] = [];
    for (const entry of await readdir(this.dataDir, { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(SUFFIX)) keys.push(entry.name.slice(0, -SUFFIX.length));
      if (!entry.isDirectory() || !entry.name.endsWith(DIR_MARK)) continue;
      for (const name of await readdir(join(this.dataDir, entry.name))) {
        if (name.endsWith(SUFFIX)) keys.push(`${entry.name}${name.slice(0, -SUFFIX.length)}`);
      }
    }
    const sources: ReplicationSourceId[] = [];
    for (const key of keys) {
      const source = parseSourceKey(key);
      if (source) sources.push(source);
    }
    return sources;
  }
}

/** Where a source's file is, relative to the data (or backup) directory. */
function relativePath(source: ReplicationSourceId): string {
  const key = sourceKey(source);
  return key.length <= FLAT_KEY_MAX
    ? `${key}${SUFFIX}`
    : join(`${source.nodeId}${DIR_MARK}`, `${source.shard}${SUFFIX}`);
}

function tooManySources(key: string, limit: number): OmniRelayError {
  return new OmniRelayError({
    status: "resource-exhausted",
    code: ErrorCodes.replicationHub.storeFailed,
    message:
      `The hub already holds its maximum of ${limit} sources (--max-sources), so it does not create a log for ` +
      `${key}. Raise --max-sources if the mesh has that many node ids and shards.`,
    metadata: { "replication.source": key, limit: String(limit) },
  });
}
