/**
 * @omnirelay/diagnostics — the OmniRelay control plane: lease health, backpressure, replication checkpoints,
 * queue counters, runtime toggles, health probes and Prometheus metrics (prom-client).
 * @packageDocumentation
 */

export type { ControlPlaneAuthOptions } from "./auth.js";
export type { ShardBackpressureSignal } from "./backpressure-stream.js";
export {
  type ControlPlaneShardOptions,
  ResourceLeaseControlPlane,
  type ResourceLeaseControlPlaneOptions,
} from "./control-plane.js";
export {
  defaultDurationBucketsMs,
  OTHER_LABEL,
  PrometheusRpcMetricsRecorder,
  type PrometheusRpcMetricsRecorderOptions,
} from "./metrics.js";
export {
  type ReplicationCheckpoint,
  type ReplicationSource,
  TrackedReplicationSink,
  type TrackedReplicationSinkOptions,
} from "./replication.js";
export type { ReplicationCheckpointRow } from "./routes.js";
export type { ControlPlaneListenOptions, ControlPlaneServer } from "./server.js";
export {
  type LoggingSettings,
  type LogLevel,
  LogLevels,
  type RuntimeToggleOptions,
  RuntimeToggles,
  type TracingSettings,
} from "./toggles.js";
