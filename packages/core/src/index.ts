/**
 * @omnirelay/core — the ResourceLease contracts, the lease queue engine, replication plumbing, deterministic capture,
 * backpressure, rate limiters and peer health. No native dependencies.
 * @packageDocumentation
 */

// Backpressure and rate limiting
export type {
  BackpressureAwareRateLimiterOptions,
  BackpressureUpdatesOptions,
  ConcurrencyLimiterOptions,
  RateLimiter,
  RateLimiterSelector,
  RateLimitingBackpressureListenerOptions,
  RateLimitPermit,
  ResourceLeaseBackpressureControllerOptions,
  ResourceLeaseBackpressureDiagnosticsListenerOptions,
  TokenBucketLimiterOptions,
  WaitUntilInactiveOptions,
} from "./backpressure/index.js";
export {
  BackpressureAwareRateLimiter,
  ConcurrencyLimiter,
  RateLimitingBackpressureListener,
  ResourceLeaseBackpressureController,
  ResourceLeaseBackpressureDiagnosticsListener,
  TokenBucketLimiter,
} from "./backpressure/index.js";
// Contracts
export type {
  CallOptions,
  ResourceLeaseEventLog,
  ResourceLeaseEventType,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicationSink,
  ResourceLeaseReplicator,
} from "./contracts/events.js";
export { eventTypeFromNumber, ResourceLeaseEventTypes } from "./contracts/events.js";
export type {
  Logger,
  PeerHealthSnapshotProvider,
  PeerLeaseHealthSnapshot,
  ResourceLeaseBackpressureListener,
  ResourceLeaseBackpressureSignal,
} from "./contracts/health.js";
export { silentLogger } from "./contracts/health.js";
export type { LifecycleState } from "./contracts/lifecycle.js";
export type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueState,
  ResourceLeaseQueueStats,
} from "./contracts/payload.js";
export type {
  DeterministicRecord,
  DeterministicStateStore,
  ObjectListEntry,
  ObjectPutOptions,
  ResourceLeaseObjectStore,
} from "./contracts/stores.js";
// Deterministic capture
export type {
  DeterministicErrorCode,
  DeterministicRecordOptions,
  DeterministicRecordResult,
  ResolvedDeterministicOptions,
  ResourceLeaseDeterministicOptions,
} from "./deterministic/index.js";
export {
  DETERMINISTIC_EFFECT_KIND,
  DETERMINISTIC_VERSION_KIND,
  DeterministicErrorCodes,
  DeterministicResourceLeaseCoordinator,
  InMemoryDeterministicStateStore,
  resolveDeterministicOptions,
} from "./deterministic/index.js";
// Dispatcher
export {
  composeInbound,
  Dispatcher,
  type DispatcherDeadlineOptions,
  DispatcherErrorCodes,
  type DispatcherOptions,
  decodeJsonBody,
  encodeJsonBody,
  type JsonUnaryHandler,
  jsonProcedure,
  type LifecycleComponent,
  LifecycleGroup,
  type LifecycleGroupOptions,
  type LifecycleInbound,
  type LifecycleStopOptions,
  type ProcedureDefinition,
  type ProcedureRegistration,
  type ProcedureSpec,
  type RequestMeta,
  type TransportKind,
  type TransportSecurity,
  type UnaryHandler,
  type UnaryInboundMiddleware,
  type UnaryOutbound,
  type UnaryRequest,
  type UnaryResponse,
} from "./dispatcher/index.js";
// Errors
export { type ResourceLeaseErrorCode, ResourceLeaseErrorCodes } from "./errors/codes.js";
export { isOmniRelayError, OmniRelayError, type OmniRelayErrorOptions } from "./errors/omnirelay-error.js";
export {
  type OmniRelayStatus,
  type OmniRelayStatusInfo,
  parseStatus,
  statusInfo,
  statusTable,
} from "./errors/status.js";
// Middleware
export {
  type AuthorizationDecision,
  AuthorizationMiddleware,
  type AuthorizationOptions,
  AuthorizationPolicy,
  type AuthorizationRule,
  canonicalIpAddress,
  compileProcedureGlob,
  compileProcedureGlobs,
  createOtelRpcMetricsRecorder,
  DeadlineMiddleware,
  type DeadlineMiddlewareOptions,
  formatTraceparent,
  isLeaseLongPoll,
  type JwtVerificationOptions,
  MiddlewareErrorCodes,
  matchesProcedureGlob,
  maxDeadlineHorizonMs,
  type OtelRpcMetricsRecorderOptions,
  PrincipalBindingMiddleware,
  type PrincipalBindingMiddlewareOptions,
  type ProcedureMatcher,
  type ProcedureParts,
  parseRfc3339DateTime,
  parseTraceparent,
  RateLimitingMiddleware,
  type RateLimitingMiddlewareOptions,
  type RequestDeadlineOptions,
  type RequestLimiterSelector,
  type RequestLimiterSource,
  type RpcCallMetric,
  RpcMetricsMiddleware,
  type RpcMetricsMiddlewareOptions,
  type RpcMetricsRecorder,
  RpcTracingMiddleware,
  type RpcTracingMiddlewareOptions,
  readRequestDeadline,
  rpcInstrumentationName,
  splitProcedure,
} from "./middleware/index.js";
// Peers
export {
  BasicPeer,
  type BasicPeerOptions,
  FewestPendingPeerChooser,
  type Peer,
  type PeerAcquireOptions,
  type PeerChooser,
  PeerChooserBase,
  type PeerChooserOptions,
  type PeerDisconnectAlert,
  type PeerErrorCode,
  PeerErrorCodes,
  type PeerGossipOptions,
  type PeerLease,
  type PeerLeaseAssignmentInfo,
  PeerLeaseHealthDiagnostics,
  type PeerLeaseHealthDiagnosticsLease,
  type PeerLeaseHealthDiagnosticsPeer,
  type PeerLeaseHealthDiagnosticsSummary,
  type PeerLeaseHealthStats,
  PeerLeaseHealthTracker,
  type PeerLeaseHealthTrackerOptions,
  type PeerLeaseReleaseInfo,
  PeerList,
  type PeerRejections,
  type PeerState,
  type PeerStatus,
  RoundRobinPeerChooser,
  TwoRandomChoicesPeerChooser,
} from "./peers/index.js";
// Queue engine
export type {
  ResourceLeaseActiveLeaseSnapshot,
  ResourceLeaseCallContext,
  ResourceLeaseCompleteResult,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOptions,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
  ResourceLeaseLeaseOptions,
  ResourceLeaseQueueBackpressureOptions,
  ResourceLeaseQueueOptions,
  ResourceLeaseQueueSnapshot,
  ResourceLeaseRebuildOptions,
  ResourceLeaseRestoreOptions,
  ResourceLeaseRetryBackoffOptions,
} from "./queue/index.js";
export { ResourceLeaseQueue } from "./queue/index.js";
// Replication
export {
  CheckpointingResourceLeaseReplicationSink,
  type CheckpointingResourceLeaseReplicationSinkOptions,
  CompositeResourceLeaseReplicator,
  type CompositeResourceLeaseReplicatorOptions,
  DurableFanOutResourceLeaseReplicator,
  type DurableFanOutResourceLeaseReplicatorOptions,
  InMemoryResourceLeaseCheckpointStore,
  InMemoryResourceLeaseEventLog,
  InMemoryResourceLeaseReplicator,
  type InMemoryResourceLeaseReplicatorOptions,
  type ReplicationErrorCode,
  ReplicationErrorCodes,
  type ResourceLeaseCheckpoint,
  type ResourceLeaseCheckpointStore,
  ShardedResourceLeaseReplicator,
  type ShardedResourceLeaseReplicatorOptions,
} from "./replication/index.js";
// ResourceLease procedures, client and sharding
export {
  type ClientEnqueueResult,
  createShardResolver,
  ResourceLeaseClient,
  type ResourceLeaseClientCallOptions,
  type ResourceLeaseClientOptions,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseDispatcherComponentOptions,
  type ResourceLeaseMessages,
  ResourceLeaseProcedures,
  type ResourceLeaseVerb,
  ResourceLeaseVerbs,
  type ShardResolver,
  type ShardResolverOptions,
} from "./resourcelease/index.js";
// HTTP transport
export {
  HttpInbound,
  type HttpInboundOptions,
  type HttpInboundTlsOptions,
  HttpOutbound,
  type HttpOutboundOptions,
  type HttpOutboundTlsOptions,
  type ReadinessCheck,
} from "./transport/http/index.js";
// Utilities
export { type Clock, systemClock, type TimerHandle } from "./util/clock.js";
// The wire layer: messages, their codecs and limits
export {
  type DecodePendingItemOptions,
  decodePendingItem,
  decodeReplicationEvent,
  encodePendingItem,
  encodeReplicationEvent,
  getPropertyIgnoreCase,
  payloadBytes,
  ResourceLeaseLimits,
  type ResourceLeasePendingItemJson,
} from "./wire/index.js";
// Worker
export {
  ResourceLeaseWorker,
  type ResourceLeaseWorkerCallOptions,
  type ResourceLeaseWorkerClient,
  type ResourceLeaseWorkerCloseOptions,
  type ResourceLeaseWorkerContext,
  type ResourceLeaseWorkerErrorCode,
  ResourceLeaseWorkerErrorCodes,
  type ResourceLeaseWorkerEvent,
  type ResourceLeaseWorkerEventsOptions,
  type ResourceLeaseWorkerFailDecision,
  type ResourceLeaseWorkerHandler,
  type ResourceLeaseWorkerOperation,
  type ResourceLeaseWorkerOptions,
  type ResourceLeaseWorkerRetryOptions,
  type ResourceLeaseWorkerStats,
} from "./worker/index.js";
