import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type Clock,
  type Logger,
  OmniRelayError,
  type ReadinessCheck,
  type ResourceLeaseQueue,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicationSink,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import type { ResourceLeaseBackpressureSignal } from "@omnirelay/core/backpressure";
import { RpcMetricsMiddleware } from "@omnirelay/core/middleware";
import type { PeerChooser, PeerHealthSnapshotProvider } from "@omnirelay/core/peers";
import { integerOption, textOption } from "@omnirelay/core/wire";
import { collectDefaultMetrics, Registry } from "prom-client";
import { ControlPlaneAuthenticator } from "./auth.js";
import { BackpressureEventStream, type ShardBackpressureSignal } from "./backpressure-stream.js";
import { TrackedPeerChooser } from "./chooser.js";
import type { ResourceLeaseControlPlaneOptions } from "./control-plane-options.js";
import { closedError, duplicate } from "./errors.js";
import { sendError } from "./http.js";
import { ResourceLeaseMetrics } from "./metrics.js";
import { parseAllowedOrigins } from "./origin.js";
import { PeerMetrics } from "./peer-metrics.js";
import { ReadinessChecks } from "./readiness.js";
import { type ReplicationSource, TrackedReplicationSink } from "./replication.js";
import {
  type DeterministicStoreOptions,
  type ReplicationOutboxOptions,
  ReplicationRegistry,
} from "./replication-registry.js";
import { type ControlPlaneState, routeRequest } from "./routes.js";
import { checkBuckets, PrometheusRpcMetricsRecorder } from "./rpc-metrics.js";
import { type ControlPlaneListenOptions, type ControlPlaneServer, serveControlPlane } from "./server.js";
import { type ControlPlaneShardOptions, ShardRegistry } from "./shards.js";
import { RuntimeToggles } from "./toggles.js";

/**
 * The OmniRelay diagnostics control plane: lease health, backpressure (latest and a live stream), replication
 * checkpoints, queue counters, runtime toggles, probes and Prometheus metrics over HTTP. Mount {@link handler}
 * as an `HttpInbound` `fallback`, or {@link listen} on a port of its own.
 */
export class ResourceLeaseControlPlane implements AsyncDisposable {
  /** The prom-client registry every metric is registered in. */
  readonly registry: Registry;
  /** Give to core's `RpcMetricsMiddleware` (or use {@link rpcMetricsMiddleware}) for the HTTP metrics. */
  readonly rpcMetricsRecorder: PrometheusRpcMetricsRecorder;
  /** Log level and tracing switches, with change listeners. */
  readonly toggles: RuntimeToggles;
  private readonly metrics: ResourceLeaseMetrics;
  private readonly peerMetrics: PeerMetrics;
  private readonly shards: ShardRegistry;
  private readonly providers = new Set<PeerHealthSnapshotProvider>();
  private readonly choosers = new Map<string, TrackedPeerChooser>();
  private readonly replication = new ReplicationRegistry();
  private readonly checks = new ReadinessChecks();
  private readonly stream: BackpressureEventStream;
  private readonly auth: ControlPlaneAuthenticator | undefined;
  private readonly servers = new Set<ControlPlaneServer>();
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly maxReplicationLagMs: number;
  private readonly maxBodyBytes: number;
  private readonly allowedOrigins: ReadonlySet<string>;
  private closed = false;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for bad options. */
  constructor(options: ResourceLeaseControlPlaneOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.maxReplicationLagMs = integerOption("maxReplicationLagMs", options.maxReplicationLagMs, {
      min: 0,
      fallback: 30_000,
    });
    this.maxBodyBytes = integerOption("maxBodyBytes", options.maxBodyBytes, { min: 16, fallback: 65_536 });
    const heartbeatIntervalMs = integerOption("sseHeartbeatIntervalMs", options.sseHeartbeatIntervalMs, {
      min: 1,
      fallback: 15_000,
    });
    const maxPeerLabels = integerOption("maxPeerLabels", options.maxPeerLabels, { min: 0, fallback: 50 });
    checkBuckets("histogramBucketsMs", options.histogramBucketsMs);
    if (options.registry !== undefined && !(options.registry instanceof Registry)) {
      throw OmniRelayError.invalidOption("registry", "Option 'registry' must be a prom-client Registry.");
    }
    this.allowedOrigins = parseAllowedOrigins(options.allowedOrigins);
    this.auth = options.auth === undefined ? undefined : new ControlPlaneAuthenticator(options.auth);
    this.toggles = new RuntimeToggles({ ...options.toggles, logger: this.logger });
    this.registry = options.registry ?? new Registry();
    this.shards = new ShardRegistry({
      clock: this.clock,
      logger: this.logger,
      closed: this.abort.signal,
      onSignal: (shard, signal) => this.onSignal(shard, signal),
    });
    this.metrics = new ResourceLeaseMetrics(
      this.registry,
      {
        shards: () =>
          this.shards.entries().map((s) => ({
            namespace: s.namespace,
            stats: () => s.queue.stats(),
            backpressureActive: () => ShardRegistry.latest(s)?.isActive,
            registeredAt: s.registeredAt,
          })),
        checkpoints: () => this.checkpoints(),
        outboxes: () => this.replication.outboxes(),
        stores: () => this.replication.stores(),
      },
      { clock: this.clock, lagBucketsMs: options.histogramBucketsMs },
    );
    this.peerMetrics = new PeerMetrics(
      this.registry,
      {
        peers: () => this.providers,
        choosers: () => [...this.choosers].map(([chooser, c]) => ({ chooser, rejections: () => c.rejections() })),
      },
      { clock: this.clock, maxPeerLabels },
    );
    this.rpcMetricsRecorder = new PrometheusRpcMetricsRecorder({
      registry: this.registry,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(options.maxProcedures !== undefined ? { maxProcedures: options.maxProcedures } : {}),
      ...(options.histogramBucketsMs ? { bucketsMs: options.histogramBucketsMs } : {}),
    });
    if (options.collectDefaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.stream = new BackpressureEventStream({
      clock: this.clock,
      logger: this.logger,
      heartbeatIntervalMs,
      maxBufferedBytes: 1 << 20,
    });
  }

  /** Number of clients connected to the backpressure event stream. */
  get streamClientCount(): number {
    return this.stream.size;
  }

  /**
   * Registers a shard: its queue counters, backpressure transitions and readiness (not faulted, closed or draining).
   * @returns a function that unregisters it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a namespace already registered;
   * invalid-argument `resourcelease.options.invalid` for a blank namespace or a missing queue.
   */
  addShard(options: ControlPlaneShardOptions): () => void {
    this.ensureOpen();
    return this.shards.add(options);
  }

  /** Registers a `ResourceLeaseDispatcherComponent` (its namespace and queue) as a shard; see {@link addShard}. */
  addComponent(component: { readonly namespace: string; readonly queue: ResourceLeaseQueue }): () => void {
    return this.addShard({ namespace: component.namespace, queue: component.queue });
  }

  /**
   * Registers a peer health provider (e.g. a `PeerLeaseHealthTracker`) for `/lease-health` and the peer metrics.
   * @returns a function that unregisters it.
   */
  addHealthProvider(provider: PeerHealthSnapshotProvider): () => void {
    if (typeof provider?.snapshot !== "function") {
      throw OmniRelayError.invalidOption("provider", "A health provider must have a snapshot() method.");
    }
    this.providers.add(provider);
    return () => this.providers.delete(provider);
  }

  /**
   * Wraps a peer chooser so its decisions are counted in `omnirelay_peer_chooser_decisions_total{chooser,outcome}`
   * and its skips in `omnirelay_peer_chooser_rejections_total{chooser,reason}`. Use the result in its place.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a chooser name already used.
   */
  trackPeerChooser(options: { readonly name: string; readonly chooser: PeerChooser }): PeerChooser {
    const name = textOption("name", options?.name);
    if (typeof options.chooser?.acquire !== "function")
      throw OmniRelayError.invalidOption("chooser", "Option 'chooser' must be a PeerChooser.");
    if (this.choosers.has(name)) throw duplicate("peer chooser", name);
    const tracked = new TrackedPeerChooser(options.chooser, (outcome) => {
      try {
        this.peerMetrics.chooserDecision(name, outcome);
      } catch (err) {
        this.logger.warn({ err, chooser: name }, "Counting a chooser decision failed.");
      }
    });
    this.peerMetrics.trackChooser(name);
    this.choosers.set(name, tracked);
    return tracked;
  }

  /**
   * Registers a replication sink's checkpoint for `/replication/checkpoint`, `/readyz` and the checkpoint gauges.
   * @returns a function that unregisters it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a sink/shard pair already registered.
   */
  addReplicationSource(source: ReplicationSource): () => void {
    return this.replication.addSource(source);
  }

  /**
   * Exports a replicator's or hub client's outbox depth as `omnirelay_resourcelease_replication_outbox_events`.
   * @returns a function that unregisters it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a sink/shard pair already registered.
   */
  addReplicationOutbox(options: ReplicationOutboxOptions): () => void {
    return this.replication.addOutbox(options);
  }

  /**
   * Exports a deterministic state store's size as `omnirelay_deterministic_store_records{store}`.
   * @returns a function that unregisters it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a store name already registered.
   */
  addDeterministicStore(options: DeterministicStoreOptions): () => void {
    return this.replication.addStore(options);
  }

  /**
   * Wraps a replication sink (or none) so that each applied event updates its checkpoint, the
   * `omnirelay_resourcelease_replication_lag{sink,shard}` histogram (now − event timestamp) and
   * `omnirelay_resourcelease_replication_applied_total{sink,shard,replay}`, each rejection the sink failure and retry
   * counters; and registers it as a replication source. Give the result to your replicator as a sink.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a sink/shard pair already registered.
   */
  trackReplicationSink(options: {
    readonly sink: string;
    readonly shard: string;
    readonly inner?: ResourceLeaseReplicationSink;
  }): TrackedReplicationSink {
    const sink = textOption("sink", options?.sink);
    const shard = textOption("shard", options.shard);
    const metrics = this.metrics;
    const tracked = new TrackedReplicationSink({
      sink,
      shard,
      ...(options.inner ? { inner: options.inner } : {}),
      clock: this.clock,
      observer: {
        applied: (outcome) => metrics.sinkApplied(sink, shard, outcome),
        failed: () => metrics.sinkFailed(sink, shard),
        retried: () => metrics.sinkRetried(sink, shard),
      },
    });
    this.addReplicationSource({ sink, shard, checkpoint: () => tracked.checkpoint() });
    metrics.trackSink(sink, shard);
    return tracked;
  }

  /**
   * A queue observer (for `queueOptions.observers`) that counts every event in
   * `omnirelay_resourcelease_replication_events_total{shard,event_type}`, stamps
   * `omnirelay_resourcelease_replication_last_event_timestamp_seconds{shard}`, counts completions accepted during a
   * lock-delay (`omnirelay_resourcelease_late_completions_total{shard}`) and lease grants and expiries per peer.
   * Never throws.
   */
  eventObserver(shard: string): (event: ResourceLeaseReplicationEvent) => void {
    const name = textOption("shard", shard);
    return (event) => {
      try {
        this.metrics.replicationEvent(name, event);
        this.peerMetrics.observe(event);
      } catch (err) {
        this.logger.warn({ err, shard: name }, "Counting a replication event failed.");
      }
    };
  }

  /**
   * Adds a named readiness check to `/readyz` (and {@link readinessCheck}).
   * @returns a function that removes it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a name already used.
   */
  addReadinessCheck(name: string, check: ReadinessCheck): () => void {
    return this.checks.add(name, check);
  }

  /** Every reason the node is not ready (empty when ready): registered checks, queue states, replication lag. */
  readinessIssues(): string[] {
    const issues = this.checks.issues();
    for (const shard of this.shards.entries()) {
      const state = shard.queue.stats().state;
      if (state !== "running") issues.push(`queue ${shard.namespace} is ${state}`);
    }
    for (const row of this.checkpoints()) {
      if (row.error !== undefined) issues.push(`replication ${row.sink}/${row.shard}: ${row.error}`);
      else if ((row.lagMs ?? 0) > this.maxReplicationLagMs) {
        issues.push(`replication ${row.sink}/${row.shard} lags ${row.lagMs} ms`);
      }
    }
    return issues;
  }

  /** A check for `HttpInbound`'s `readiness` option, so its own `/readyz` includes the control plane's. */
  readinessCheck(): ReadinessCheck {
    return () => {
      const issues = this.readinessIssues();
      return issues.length === 0 ? undefined : issues.join("; ");
    };
  }

  /** A new `RpcMetricsMiddleware` feeding {@link rpcMetricsRecorder}; add it to the dispatcher's inbound middleware. */
  rpcMetricsMiddleware(): RpcMetricsMiddleware {
    return new RpcMetricsMiddleware({ recorder: this.rpcMetricsRecorder, clock: this.clock, logger: this.logger });
  }

  /**
   * The request handler: serves the control-plane routes and resolves `true`, or resolves `false` without touching
   * the request for any other path (so it can be an `HttpInbound` `fallback`). Never rejects.
   */
  handler(): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
    return async (req, res) => {
      try {
        return await routeRequest(this.state(), req, res);
      } catch (err) {
        this.logger.error({ err }, "The control plane failed to handle a request.");
        if (!res.writableEnded) sendError(res, err);
        return true;
      }
    };
  }

  /**
   * Serves the control plane on a port of its own; unknown routes answer 404 JSON.
   * @throws the listen error (e.g. `EADDRINUSE`) as a rejection; unavailable `omnirelay.control.closed` after close.
   */
  async listen(options: ControlPlaneListenOptions = {}): Promise<ControlPlaneServer> {
    this.ensureOpen();
    const server = await serveControlPlane(options, {
      handle: this.handler(),
      logger: this.logger,
      onClose: (closing) => this.servers.delete(closing),
    });
    this.servers.add(server);
    return server;
  }

  /** Ends every stream, detaches from the queues and closes the servers started by {@link listen}. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.stream.close();
    this.shards.detachAll();
    await Promise.all([...this.servers].map((server) => server.close()));
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onSignal(shard: string, signal: ResourceLeaseBackpressureSignal): void {
    this.metrics.backpressureTransition(shard, signal.isActive);
    const event: ShardBackpressureSignal = { ...signal, shard };
    this.stream.publish(event);
  }

  private checkpoints(): ReturnType<ControlPlaneState["checkpoints"]> {
    return this.replication.checkpoints((shard) => this.shards.get(shard)?.queue.stats().lastEventSequence);
  }

  private state(): ControlPlaneState {
    return {
      auth: this.auth,
      toggles: this.toggles,
      registry: this.registry,
      stream: this.stream,
      maxBodyBytes: this.maxBodyBytes,
      allowedOrigins: this.allowedOrigins,
      shards: () =>
        this.shards.entries().map((s) => ({
          namespace: s.namespace,
          stats: s.queue.stats(),
          latest: ShardRegistry.latest(s),
          // A core before keyStats (the peer range allows it) has no keys to show.
          busiestKeys: (top) => (typeof s.queue.keyStats === "function" ? s.queue.keyStats({ top }) : []),
        })),
      providers: () => [...this.providers],
      checkpoints: () => this.checkpoints(),
      readinessIssues: () => this.readinessIssues(),
    };
  }

  private ensureOpen(): void {
    if (this.closed) throw closedError();
  }
}
