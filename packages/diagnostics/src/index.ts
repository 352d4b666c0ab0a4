/**
 * @omnirelay/diagnostics — the OmniRelay control plane: lease health, backpressure, replication checkpoints,
 * queue counters, runtime toggles, health probes and Prometheus metrics (prom-client).
 * @packageDocumentation
 */

export type { ControlPlaneAuthOptions } from "./auth.js";
export type { ShardBackpressureSignal } from "./backpressure-stream.js";
export { TrackedPeerChooser } from "./chooser.js";
export { ResourceLeaseControlPlane } from "./control-plane.js";
export type { ResourceLeaseControlPlaneOptions } from "./control-plane-options.js";
export {
  type ReplicationCheckpoint,
  type ReplicationSource,
  TrackedReplicationSink,
  type TrackedReplicationSinkObserver,
  type TrackedReplicationSinkOptions,
} from "./replication.js";
export type { DeterministicStoreOptions, ReplicationOutboxOptions } from "./replication-registry.js";
export type { ReplicationCheckpointRow } from "./routes.js";
export {
  defaultDurationBucketsMs,
  OTHER_LABEL,
  PrometheusRpcMetricsRecorder,
  type PrometheusRpcMetricsRecorderOptions,
} from "./rpc-metrics.js";
export type { ControlPlaneListenOptions, ControlPlaneServer } from "./server.js";
export type { ControlPlaneShardOptions } from "./shards.js";
export {
  type LoggingSettings,
  type LogLevel,
  LogLevels,
  type RuntimeToggleOptions,
  RuntimeToggles,
  type TracingSettings,
} from "./toggles.js";
