/**
 * @omnirelay/replicator-grpc — the replication hub (a gRPC server storing ordered event streams from many
 * dispatchers, one log per node id + shard, with a subscribe API) and the client replicator that streams to it.
 * @packageDocumentation
 */

export type { GrpcReplicatorLag } from "./client.js";
export { GrpcResourceLeaseReplicator } from "./client.js";
export type { GrpcResourceLeaseReplicatorOptions } from "./client-options.js";
export type { ReplicationHubClientTlsOptions } from "./credentials.js";
export { GrpcReplicationHub } from "./hub.js";
export type { ReplicationHubAuthOptions, ReplicationHubDenialReason, ReplicationHubRpc } from "./hub-auth.js";
export type {
  GrpcReplicationHubClientOptions,
  ReplicationHubSourceSummary,
  ReplicationHubSubscribeOptions,
} from "./hub-client.js";
export { GrpcReplicationHubClient } from "./hub-client.js";
export type { GrpcReplicationHubOptions, ReplicationHubTlsOptions } from "./hub-options.js";
export type { ReplicationHubSourceFailure, ReplicationHubSourceStatus } from "./hub-source.js";
export type { RenderHubMetricsOptions, ReplicationHubDeniedCalls } from "./metrics.js";
export { renderHubMetrics } from "./metrics.js";
export type { GrpcReplicatorOverflow } from "./outbox.js";
export type { ReplicationSourceId } from "./source.js";
export { isValidSourceId, parseSourceKey, sourceKey } from "./source.js";
export type { ReplicationHubLog, ReplicationHubStore } from "./store.js";
export { InMemoryReplicationHubStore } from "./store.js";
