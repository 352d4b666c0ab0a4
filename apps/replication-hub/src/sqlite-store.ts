import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  parseSourceKey,
  type ReplicationHubLog,
  type ReplicationHubStore,
  type ReplicationSourceId,
  sourceKey,
} from "@omnirelay/replicator-grpc";
import { type SqliteDurability, SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";

/** Options of {@link SqliteReplicationHubStore}. */
export interface SqliteReplicationHubStoreOptions {
  /** Directory holding one SQLite file per source (created when missing). Required. */
  readonly dataDir: string;
  /** When an append counts as stored, and so when the hub acknowledges it. @defaultValue 'batched' */
  readonly durability?: SqliteDurability;
}

const SUFFIX = ".db";

/**
 * The hub's store on SQLite: one `SqliteResourceLeaseReplicator` file per source, named `<nodeId>[@<shard>].db`
 * in `dataDir`. Each file is locked exclusively, so two hub processes cannot write the same directory. A source's
 * checkpoint is its file's last sequence number, so it survives restarts (and `kill -9`: acknowledged means committed).
 */
export class SqliteReplicationHubStore implements ReplicationHubStore {
  private readonly dataDir: string;
  private readonly durability: SqliteDurability;
  private readonly logs = new Map<string, SqliteResourceLeaseReplicator>();

  constructor(options: SqliteReplicationHubStoreOptions) {
    this.dataDir = options.dataDir;
    this.durability = options.durability ?? "batched";
  }

  /** The file of `source`. */
  pathOf(source: ReplicationSourceId): string {
    return join(this.dataDir, `${sourceKey(source)}${SUFFIX}`);
  }

  async open(source: ReplicationSourceId): Promise<ReplicationHubLog> {
    await mkdir(this.dataDir, { recursive: true });
    const log = await SqliteResourceLeaseReplicator.open({ path: this.pathOf(source), durability: this.durability });
    this.logs.set(sourceKey(source), log);
    return log;
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
      const path = join(toDir, `${key}${SUFFIX}`);
      await log.backup(path);
      written.push(path);
    }
    return written;
  }

  async list(): Promise<readonly ReplicationSourceId[]> {
    await mkdir(this.dataDir, { recursive: true });
    const sources: ReplicationSourceId[] = [];
    for (const name of await readdir(this.dataDir)) {
      if (!name.endsWith(SUFFIX)) continue;
      const source = parseSourceKey(name.slice(0, -SUFFIX.length));
      if (source) sources.push(source);
    }
    return sources;
  }
}
