/** Replication plumbing: the event JSON envelope, in-memory replicator and log, checkpointing sink, sharding, fan-out. */

export { getPropertyIgnoreCase } from "./case-insensitive.js";
export type { ResourceLeaseCheckpoint, ResourceLeaseCheckpointStore } from "./checkpoint-store.js";
export { InMemoryResourceLeaseCheckpointStore } from "./checkpoint-store.js";
export type { CheckpointingResourceLeaseReplicationSinkOptions } from "./checkpointing-sink.js";
export { CheckpointingResourceLeaseReplicationSink } from "./checkpointing-sink.js";
export type { ReplicationErrorCode } from "./codes.js";
export { ReplicationErrorCodes } from "./codes.js";
export type { CompositeResourceLeaseReplicatorOptions } from "./composite-replicator.js";
export { CompositeResourceLeaseReplicator } from "./composite-replicator.js";
export type { DurableFanOutResourceLeaseReplicatorOptions } from "./durable-fan-out.js";
export { DurableFanOutResourceLeaseReplicator } from "./durable-fan-out.js";
export { decodeReplicationEvent, encodeReplicationEvent } from "./event-json.js";
export { InMemoryResourceLeaseEventLog } from "./in-memory-event-log.js";
export type { InMemoryResourceLeaseReplicatorOptions } from "./in-memory-replicator.js";
export { InMemoryResourceLeaseReplicator } from "./in-memory-replicator.js";
export type {
  ResourceLeaseErrorInfoJson,
  ResourceLeaseItemPayloadJson,
  ResourceLeaseOwnershipTokenJson,
  ResourceLeasePendingItemJson,
  ResourceLeaseReplicationEventJson,
} from "./json-types.js";
export type { DecodePendingItemOptions } from "./pending-item-json.js";
export { decodePendingItem, encodePendingItem } from "./pending-item-json.js";
export type { ShardedResourceLeaseReplicatorOptions } from "./sharded-replicator.js";
export { ShardedResourceLeaseReplicator } from "./sharded-replicator.js";
