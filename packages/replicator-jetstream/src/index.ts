/**
 * @omnirelay/replicator-jetstream — a shard's replicated event log on NATS JetStream: its events on a stream subject
 * of its own, every append fenced by the subject's last sequence so a stale writer is refused, group commits as one
 * message, replay by subject.
 * @packageDocumentation
 */

export type { JetStreamEventLogDescription, JetStreamEventLogStats, JetStreamSyncSetting } from "./describe.js";
export { JetStreamErrorCodes } from "./errors.js";
export { JetStreamResourceLeaseEventLog } from "./event-log.js";
export type { OwnerMarker } from "./frames.js";
export type { JetStreamEventLogOptions } from "./options.js";
export type { OwnedJetStreamResourceLeaseQueue, OwnedJetStreamResourceLeaseQueueOptions } from "./owned-queue.js";
export { openOwnedJetStreamResourceLeaseQueue } from "./owned-queue.js";
export type { AcquireShardOptions, JetStreamShardOwnershipOptions, ShardOwnerRecord } from "./ownership.js";
export { JetStreamShardOwnership } from "./ownership.js";
export type { JetStreamResourceLeaseQueue, JetStreamResourceLeaseQueueOptions } from "./queue.js";
export { openJetStreamResourceLeaseQueue } from "./queue.js";
export { JetStreamShardLease } from "./shard-lease.js";
export type { JetStreamSnapshotStats } from "./snapshotter.js";
