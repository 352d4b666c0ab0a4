/**
 * @omnirelay/replicator-object-storage — immutable, replayable audit streams of ResourceLease replication events on
 * object storage. The stores live in subpath exports: `/fs`, `/s3`, `/gcs`, `/azure`.
 * @packageDocumentation
 */
export { isObjectExistsError } from "./errors.js";
export type { GovernanceAuditRecord, GovernanceAuditSinkOptions } from "./governance.js";
export { GOVERNANCE_RECORD_SCHEMA, GovernanceAuditSink, governanceRecordsOf } from "./governance.js";
export type {
  ObjectStorageCorruptReason,
  ObjectStorageEventReaderOptions,
  ObjectStorageReadCheckpoint,
  ObjectStorageReadEntry,
  ObjectStorageReadOptions,
} from "./reader.js";
export { ObjectStorageEventReader } from "./reader.js";
export type { ObjectStorageResourceLeaseReplicatorOptions } from "./replicator.js";
export { ObjectStorageResourceLeaseReplicator } from "./replicator.js";
