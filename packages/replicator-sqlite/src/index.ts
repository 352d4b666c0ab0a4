/**
 * @omnirelay/replicator-sqlite — the embedded durable event log (group commit, checksums, snapshots, backup),
 * crash recovery of a ResourceLease queue from it, and a deterministic state store, all on SQLite (better-sqlite3).
 * @packageDocumentation
 */

export { isCorruptLogError } from "./errors.js";
export type { SqliteDurability, SqliteResourceLeaseReplicatorOptions } from "./options.js";
export type { DurableResourceLeaseQueue, DurableResourceLeaseQueueOptions } from "./recovery.js";
export { openDurableResourceLeaseQueue } from "./recovery.js";
export type { SqliteLogRepairOptions, SqliteLogRepairReport } from "./repair.js";
export type { SqliteReplicatorStats } from "./replicator.js";
export { SqliteResourceLeaseReplicator } from "./replicator.js";
export { SCHEMA_VERSION_TABLE } from "./schema.js";
export type { SqliteDeterministicRetention, SqliteDeterministicRetentionSettings } from "./state-retention.js";
export type { SqliteDeterministicPruneResult, SqliteDeterministicStateStoreOptions } from "./state-store.js";
export { SqliteDeterministicStateStore } from "./state-store.js";
