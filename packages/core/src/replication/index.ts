/**
 * `@omnirelay/core/replication`: replication plumbing — the in-memory replicator and event log, the checkpointing
 * sink, sharded, composite and durable fan-out replicators.
 * @packageDocumentation
 */

export type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "../contracts/stores.js";
export {
  type ResourceLeaseSnapshotInPieces,
  type ResourceLeaseSnapshotListName,
  type ResourceLeaseSnapshotPiece,
  snapshotInOnePiece,
} from "../queue/snapshot.js";
export type { ResourceLeaseQueueSnapshotView, ResourceLeaseSnapshotList } from "../queue/snapshot-view.js";
export type { ResourceLeaseCheckpoint, ResourceLeaseCheckpointStore } from "./checkpoint-store.js";
export { InMemoryResourceLeaseCheckpointStore } from "./checkpoint-store.js";
export type { CheckpointingResourceLeaseReplicationSinkOptions } from "./checkpointing-sink.js";
export { CheckpointingResourceLeaseReplicationSink } from "./checkpointing-sink.js";
export type { CompositeResourceLeaseReplicatorOptions } from "./composite-replicator.js";
export { CompositeResourceLeaseReplicator } from "./composite-replicator.js";
export type { DurableFanOutResourceLeaseReplicatorOptions } from "./durable-fan-out.js";
export { DurableFanOutResourceLeaseReplicator } from "./durable-fan-out.js";
export { InMemoryResourceLeaseEventLog } from "./in-memory-event-log.js";
export type { InMemoryResourceLeaseReplicatorOptions } from "./in-memory-replicator.js";
export { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";
export { isReplayEvent, LEASE_REPLAY_METADATA, tagReplay, withoutReplayTag } from "./replay-tag.js";
export type { ShardedResourceLeaseReplicatorOptions } from "./sharded-replicator.js";
export { ShardedResourceLeaseReplicator } from "./sharded-replicator.js";
