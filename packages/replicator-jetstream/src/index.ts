/**
 * @omnirelay/replicator-jetstream — a shard's replicated event log on NATS JetStream: its events on a stream subject
 * of its own, every append fenced by the subject's last sequence so a stale writer is refused, group commits as one
 * message, replay by subject.
 * @packageDocumentation
 */

export type { JetStreamEventLogDescription, JetStreamSyncSetting } from "./describe.js";
export { JetStreamErrorCodes } from "./errors.js";
export type { JetStreamEventLogStats } from "./event-log.js";
export { JetStreamResourceLeaseEventLog } from "./event-log.js";
export type { JetStreamEventLogOptions } from "./options.js";
export type { JetStreamResourceLeaseQueue, JetStreamResourceLeaseQueueOptions } from "./queue.js";
export { openJetStreamResourceLeaseQueue } from "./queue.js";
export type { JetStreamSnapshotStats } from "./snapshotter.js";
