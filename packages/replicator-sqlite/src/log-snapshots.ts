import type { Clock, ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type Database from "better-sqlite3";
import { checksumOf, decodeSnapshotRow, readSnapshotParts, type SnapshotRow } from "./integrity.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import type { LogTables } from "./schema.js";
import { encodeSnapshot } from "./snapshot-codec.js";

/** How many snapshots and events to keep once a snapshot is stored. Internal. */
export type SnapshotRetention = Pick<ResolvedReplicatorOptions, "retainSnapshots" | "retainEventsAfterSnapshot">;

/**
 * Prepares the transaction that stores a snapshot (its head row and parts, each with a checksum), then prunes old
 * snapshots and (with `retainEventsAfterSnapshot`) the events it covers. Internal.
 */
export function prepareSnapshotStore(
  db: Database.Database,
  tables: LogTables,
  options: { retention: SnapshotRetention; clock: Clock },
): (snapshot: ResourceLeaseQueueSnapshot) => void {
  const t = tables;
  const { retention, clock } = options;
  const putSnapshot = db.prepare(
    `INSERT OR REPLACE INTO ${t.snapshots} (sequence, created_at, data, checksum) VALUES (?, ?, ?, ?)`,
  );
  const clearParts = db.prepare(`DELETE FROM ${t.snapshotParts} WHERE sequence = ?`);
  const putPart = db.prepare(`INSERT INTO ${t.snapshotParts} (sequence, part, data, checksum) VALUES (?, ?, ?, ?)`);
  const pruneSnapshots = db.prepare(
    `DELETE FROM ${t.snapshots} WHERE sequence NOT IN (SELECT sequence FROM ${t.snapshots} ORDER BY sequence DESC LIMIT ?)`,
  );
  const pruneParts = db.prepare(
    `DELETE FROM ${t.snapshotParts} WHERE sequence NOT IN (SELECT sequence FROM ${t.snapshots})`,
  );
  const pruneEvents = db.prepare(`DELETE FROM ${t.events} WHERE sequence <= ?`);
  return db.transaction((snapshot: ResourceLeaseQueueSnapshot) => {
    const { head, parts } = encodeSnapshot(snapshot);
    const seq = snapshot.lastEventSequence;
    putSnapshot.run(seq, clock.now(), head, checksumOf(head));
    clearParts.run(seq);
    for (const [i, part] of parts.entries()) putPart.run(seq, i, part, checksumOf(part));
    pruneSnapshots.run(retention.retainSnapshots);
    pruneParts.run();
    if (retention.retainEventsAfterSnapshot !== undefined) {
      pruneEvents.run(snapshot.lastEventSequence - retention.retainEventsAfterSnapshot);
    }
  });
}

/**
 * The newest stored snapshot, verified, or `undefined`. Internal.
 * @throws OmniRelayError data-loss `resourcelease.sqlite.corrupt`.
 */
export function readLatestSnapshot(db: Database.Database, tables: LogTables): ResourceLeaseQueueSnapshot | undefined {
  const row = db
    .prepare<[], SnapshotRow>(`SELECT sequence, data, checksum FROM ${tables.snapshots} ORDER BY sequence DESC LIMIT 1`)
    .get();
  return row ? decodeSnapshotRow(row, readSnapshotParts(db, tables, row.sequence)) : undefined;
}
