/**
 * @omnirelay/replicator-jetstream — a shard's replicated event log on NATS JetStream: its events on a stream subject
 * of its own, every append fenced by the subject's last sequence so a stale writer is refused, group commits as one
 * message, replay by subject.
 * @packageDocumentation
 */

export type { ShardMember } from "./buckets.js";
export type { JetStreamEventLogDescription, JetStreamEventLogStats, JetStreamSyncSetting } from "./describe.js";
export { JetStreamErrorCodes } from "./errors.js";
export { JetStreamResourceLeaseEventLog } from "./event-log.js";
export type { OwnerMarker } from "./frames.js";
export type { JetStreamEventLogOptions } from "./options.js";
export type { OwnedJetStreamResourceLeaseQueue, OwnedJetStreamResourceLeaseQueueOptions } from "./owned-queue.js";
export { openOwnedJetStreamResourceLeaseQueue } from "./owned-queue.js";
export type { AcquireShardOptions, JetStreamShardOwnershipOptions, ShardOwnerRecord } from "./ownership.js";
export { JetStreamShardOwnership } from "./ownership.js";
export type {
  JetStreamShardPlacementOptions,
  PlacedShard,
  ServedShard,
  ShardPlacementEvent,
} from "./placement.js";
export { JetStreamShardPlacement } from "./placement.js";
export type { JetStreamResourceLeaseQueue, JetStreamResourceLeaseQueueOptions } from "./queue.js";
export { openJetStreamResourceLeaseQueue } from "./queue.js";
export type { ShardPlacementInput } from "./rendezvous.js";
export { placeShards, rendezvousNode, rendezvousWeight } from "./rendezvous.js";
export type { JetStreamShardAdminOptions, ShardsOverview, ShardView } from "./shard-admin.js";
export { JetStreamShardAdmin } from "./shard-admin.js";
export { JetStreamShardLease } from "./shard-lease.js";
export type { JetStreamSnapshotStats } from "./snapshotter.js";
export type { JetStreamDeterministicStateStoreOptions } from "./state-store.js";
export { JetStreamDeterministicStateStore } from "./state-store.js";
