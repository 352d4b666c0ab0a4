/**
 * @omnirelay/core — the ResourceLease contracts, the lease queue, the dispatcher with its HTTP transport, the typed
 * client and the worker. Further areas have entries of their own:
 * `@omnirelay/core/middleware` (principal binding, authorization, deadlines, rate limits, tracing, metrics),
 * `@omnirelay/core/backpressure` (watermarks, rate limiters), `@omnirelay/core/peers` (peer health, choosers),
 * `@omnirelay/core/replication` (in-memory, composite, sharded, checkpointing and fan-out replicators; the object
 * store contract),
 * `@omnirelay/core/deterministic` (deterministic capture and its state store contract), `@omnirelay/core/wire` (every message's description, the
 * event and item codecs, limits, the status table) and `@omnirelay/core/testing` (doubles and conformance suites).
 * No native dependencies.
 * @packageDocumentation
 */

// Contracts
export type {
  CallOptions,
  ResourceLeaseEventLog,
  ResourceLeaseEventType,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicationSink,
  ResourceLeaseReplicator,
} from "./contracts/events.js";
export { ResourceLeaseEventTypes } from "./contracts/events.js";
export { type Logger, silentLogger } from "./contracts/health.js";
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
// Dispatcher
export {
  Dispatcher,
  type DispatcherDeadlineOptions,
  type DispatcherOptions,
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
export { type ErrorCode, ErrorCodes } from "./errors/codes.js";
export { isOmniRelayError, OmniRelayError, type OmniRelayErrorOptions } from "./errors/omnirelay-error.js";
export type { OmniRelayStatus } from "./errors/status.js";
// Queue engine
export type {
  ResourceLeaseActiveLeaseSnapshot,
  ResourceLeaseCallContext,
  ResourceLeaseCompleteResult,
  ResourceLeaseDeadLetterRetentionOptions,
  ResourceLeaseDeadLettersOptions,
  ResourceLeaseDrainOptions,
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
// ResourceLease procedures, client and sharding
export {
  type ClientEnqueueResult,
  createShardResolver,
  ResourceLeaseClient,
  type ResourceLeaseClientCallOptions,
  type ResourceLeaseClientEnqueueOptions,
  type ResourceLeaseClientOptions,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseDispatcherComponentOptions,
  type ResourceLeaseEndpoint,
  type ResourceLeaseEndpointChange,
  type ResourceLeaseFailoverOptions,
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
// Worker
export {
  ResourceLeaseWorker,
  type ResourceLeaseWorkerClient,
  type ResourceLeaseWorkerCloseOptions,
  type ResourceLeaseWorkerContext,
  type ResourceLeaseWorkerEvent,
  type ResourceLeaseWorkerFailDecision,
  type ResourceLeaseWorkerHandler,
  type ResourceLeaseWorkerOptions,
  type ResourceLeaseWorkerRetryOptions,
  type ResourceLeaseWorkerStats,
} from "./worker/index.js";
