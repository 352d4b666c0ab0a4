import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type Clock,
  type Dispatcher,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  type ReadinessCheck,
  type ResourceLeaseQueue,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicationSink,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import type {
  ResourceLeaseBackpressureDiagnosticsListener,
  ResourceLeaseBackpressureSignal,
} from "@omnirelay/core/backpressure";
import { RpcMetricsMiddleware } from "@omnirelay/core/middleware";
import type { PeerHealthSnapshotProvider } from "@omnirelay/core/peers";
import { collectDefaultMetrics, Registry } from "prom-client";
import { ControlPlaneAuthenticator, type ControlPlaneAuthOptions } from "./auth.js";
import { BackpressureEventStream, type ShardBackpressureSignal } from "./backpressure-stream.js";
import { sendError } from "./http.js";
import { checkBuckets, PrometheusRpcMetricsRecorder, ResourceLeaseMetrics } from "./metrics.js";
import { integerOption, nameOption } from "./options.js";
import { parseAllowedOrigins } from "./origin.js";
import { type ReplicationSource, TrackedReplicationSink } from "./replication.js";
import { type ControlPlaneState, routeRequest } from "./routes.js";
import { type ControlPlaneListenOptions, type ControlPlaneServer, serveControlPlane } from "./server.js";
import { type RuntimeToggleOptions, RuntimeToggles } from "./toggles.js";

/** Options of a {@link ResourceLeaseControlPlane}. */
export interface ResourceLeaseControlPlaneOptions {
  /** Registry for every metric; never prom-client's global one. @defaultValue a new `Registry` */
  readonly registry?: Registry;
  /** Also export prom-client's default Node.js process metrics. @defaultValue false */
  readonly collectDefaultMetrics?: boolean;
  /** Limits the `procedure` label of the HTTP metrics to this dispatcher's procedures. @defaultValue `undefined` */
  readonly dispatcher?: Pick<Dispatcher, "lookup">;
  /** Distinct `procedure` label values kept (later ones are `_other`). @defaultValue 500 */
  readonly maxProcedures?: number;
  /** Buckets of the replication-lag and request-duration histograms, ms. @defaultValue 1 ms … 60 s */
  readonly histogramBucketsMs?: readonly number[];
  /** Authentication and admin principals; without it every endpoint is open (bind to a private interface!). */
  readonly auth?: ControlPlaneAuthOptions;
  /**
   * Browser origins (`https://ops.example.com`) besides the control plane's own that may call the state-changing
   * endpoints, e.g. the public origin of a reverse proxy that rewrites `Host`. Requests without an `Origin` header
   * (CLI, curl, programs) are never affected. No CORS headers are served.
   * @defaultValue `[]`
   */
  readonly allowedOrigins?: readonly string[];
  /** Initial log level and tracing settings. */
  readonly toggles?: Omit<RuntimeToggleOptions, "logger">;
  /** `/readyz` fails while a replication sink lags more than this, ms. @defaultValue 30000 */
  readonly maxReplicationLagMs?: number;
  /** Interval of SSE heartbeat comments, ms. @defaultValue 15000 */
  readonly sseHeartbeatIntervalMs?: number;
  /** Largest accepted POST body. @defaultValue 65536 */
  readonly maxBodyBytes?: number;
  /** @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/** A shard registration for {@link ResourceLeaseControlPlane.addShard}. */
export interface ControlPlaneShardOptions {
  /** Queue namespace; the `shard` label value. */
  readonly namespace: string;
  /** The shard's queue (`component.queue`). */
  readonly queue: ResourceLeaseQueue;
  /**
   * A diagnostics listener fed by the queue's gate. Only needed when the queue has no `backpressure` controller
   * of its own (otherwise the control plane listens to the controller directly). @defaultValue `undefined`
   */
  readonly backpressure?: ResourceLeaseBackpressureDiagnosticsListener;
}

interface ShardEntry {
  readonly namespace: string;
  readonly queue: ResourceLeaseQueue;
  readonly listener: ResourceLeaseBackpressureDiagnosticsListener | undefined;
  latest: ResourceLeaseBackpressureSignal | undefined;
  readonly detach: () => void;
}

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
  private readonly shards = new Map<string, ShardEntry>();
  private readonly providers = new Set<PeerHealthSnapshotProvider>();
  private readonly sources = new Map<string, ReplicationSource>();
  private readonly checks = new Map<string, ReadinessCheck>();
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
    this.maxReplicationLagMs = integerOption("maxReplicationLagMs", options.maxReplicationLagMs, 30_000, 0);
    this.maxBodyBytes = integerOption("maxBodyBytes", options.maxBodyBytes, 65_536, 16);
    const heartbeatIntervalMs = integerOption("sseHeartbeatIntervalMs", options.sseHeartbeatIntervalMs, 15_000, 1);
    checkBuckets("histogramBucketsMs", options.histogramBucketsMs);
    if (options.registry !== undefined && !(options.registry instanceof Registry)) {
      throw OmniRelayError.invalidOption("registry", "Option 'registry' must be a prom-client Registry.");
    }
    this.allowedOrigins = parseAllowedOrigins(options.allowedOrigins);
    this.auth = options.auth === undefined ? undefined : new ControlPlaneAuthenticator(options.auth);
    this.toggles = new RuntimeToggles({ ...options.toggles, logger: this.logger });
    this.registry = options.registry ?? new Registry();
    this.metrics = new ResourceLeaseMetrics(
      this.registry,
      {
        shards: () => [...this.shards.values()].map((s) => [s.namespace, () => s.queue.stats()] as const),
        peers: () => this.providers,
      },
      options.histogramBucketsMs,
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
    const namespace = nameOption("namespace", options?.namespace);
    if (typeof options.queue?.stats !== "function")
      throw OmniRelayError.invalidOption("queue", "Option 'queue' must be a queue.");
    this.ensureOpen();
    if (this.shards.has(namespace)) throw duplicate("shard", namespace);
    const onSignal = (signal: ResourceLeaseBackpressureSignal): void => this.onSignal(namespace, signal);
    let detach: () => void = () => {};
    const controller = options.queue.backpressure;
    if (controller !== undefined) {
      detach = controller.addListener({ onBackpressureChanged: onSignal });
    } else if (options.backpressure !== undefined) {
      const stop = new AbortController();
      const relay = stop.signal;
      const updates = options.backpressure.updates({ signal: AbortSignal.any([relay, this.abort.signal]) });
      void (async () => {
        for await (const signal of updates) onSignal(signal);
      })().catch((err: unknown) => this.logger.warn({ err, shard: namespace }, "Backpressure relay stopped."));
      detach = () => stop.abort();
    }
    const entry: ShardEntry = {
      namespace,
      queue: options.queue,
      listener: options.backpressure,
      latest: undefined,
      detach,
    };
    this.shards.set(namespace, entry);
    return () => {
      if (this.shards.get(namespace) !== entry) return;
      this.shards.delete(namespace);
      entry.detach();
    };
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
   * Registers a replication sink's checkpoint for `/replication/checkpoint` and `/readyz`.
   * @returns a function that unregisters it.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a sink/shard pair already registered.
   */
  addReplicationSource(source: ReplicationSource): () => void {
    const sink = nameOption("sink", source?.sink);
    const shard = nameOption("shard", source.shard);
    if (typeof source.checkpoint !== "function")
      throw OmniRelayError.invalidOption("checkpoint", "Option 'checkpoint' is required.");
    const key = `${sink}\u0000${shard}`;
    if (this.sources.has(key)) throw duplicate("replication source", `${sink}/${shard}`);
    const entry: ReplicationSource = { sink, shard, checkpoint: source.checkpoint };
    this.sources.set(key, entry);
    return () => {
      if (this.sources.get(key) === entry) this.sources.delete(key);
    };
  }

  /**
   * Wraps a replication sink (or none) so that each applied event updates its checkpoint and the
   * `omnirelay_resourcelease_replication_lag{sink,shard}` histogram (now − event timestamp), and registers it as a
   * replication source. Give the result to your replicator as a sink.
   * @throws OmniRelayError already-exists `omnirelay.control.duplicate` for a sink/shard pair already registered.
   */
  trackReplicationSink(options: {
    readonly sink: string;
    readonly shard: string;
    readonly inner?: ResourceLeaseReplicationSink;
  }): TrackedReplicationSink {
    const sink = nameOption("sink", options?.sink);
    const shard = nameOption("shard", options.shard);
    const tracked = new TrackedReplicationSink({
      sink,
      shard,
      ...(options.inner ? { inner: options.inner } : {}),
      clock: this.clock,
      onLag: (lagMs) => this.metrics.replicationLag(sink, shard, lagMs),
    });
    this.addReplicationSource({ sink, shard, checkpoint: () => tracked.checkpoint() });
    return tracked;
  }

  /**
   * A queue observer (for `queueOptions.observers`) that counts every event in
   * `omnirelay_resourcelease_replication_events_total{shard,event_type}`. Never throws.
   */
  eventObserver(shard: string): (event: ResourceLeaseReplicationEvent) => void {
    const name = nameOption("shard", shard);
    return (event) => {
      try {
        this.metrics.replicationEvent(name, event.eventType);
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
    const key = nameOption("name", name);
    if (typeof check !== "function")
      throw OmniRelayError.invalidOption("check", "A readiness check must be a function.");
    if (this.checks.has(key)) throw duplicate("readiness check", key);
    this.checks.set(key, check);
    return () => {
      if (this.checks.get(key) === check) this.checks.delete(key);
    };
  }

  /** Every reason the node is not ready (empty when ready): registered checks, queue states, replication lag. */
  readinessIssues(): string[] {
    const issues: string[] = [];
    for (const [name, check] of this.checks) {
      try {
        const issue = check();
        if (issue) issues.push(`${name}: ${issue}`);
      } catch (err) {
        issues.push(`${name}: check failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const shard of this.shards.values()) {
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
    for (const shard of this.shards.values()) shard.detach();
    await Promise.all([...this.servers].map((server) => server.close()));
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onSignal(shard: string, signal: ResourceLeaseBackpressureSignal): void {
    const entry = this.shards.get(shard);
    if (entry) entry.latest = signal;
    this.metrics.backpressureTransition(shard, signal.isActive);
    const event: ShardBackpressureSignal = { ...signal, shard };
    this.stream.publish(event);
  }

  private checkpoints(): ReturnType<ControlPlaneState["checkpoints"]> {
    return [...this.sources.values()].map((source) => {
      const queue = this.shards.get(source.shard)?.queue;
      const queueLastEventSequence = queue?.stats().lastEventSequence;
      try {
        const checkpoint = source.checkpoint();
        const caught = queueLastEventSequence !== undefined && checkpoint.lastSequence >= queueLastEventSequence;
        const lagMs = caught ? 0 : checkpoint.lagMs;
        return {
          sink: source.sink,
          shard: source.shard,
          lastSequence: checkpoint.lastSequence,
          ...(lagMs !== undefined ? { lagMs } : {}),
          ...(queueLastEventSequence !== undefined
            ? { queueLastEventSequence, behindEvents: Math.max(0, queueLastEventSequence - checkpoint.lastSequence) }
            : {}),
        };
      } catch (err) {
        return {
          sink: source.sink,
          shard: source.shard,
          error: err instanceof Error ? err.message : String(err),
          ...(queueLastEventSequence !== undefined ? { queueLastEventSequence } : {}),
        };
      }
    });
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
        [...this.shards.values()].map((s) => ({
          namespace: s.namespace,
          stats: s.queue.stats(),
          latest: s.latest ?? s.listener?.latest ?? s.queue.backpressure?.latest,
        })),
      providers: () => [...this.providers],
      checkpoints: () => this.checkpoints(),
      readinessIssues: () => this.readinessIssues(),
    };
  }

  private ensureOpen(): void {
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.controlPlane.closed,
        message: "The control plane is closed.",
      });
    }
  }
}

function duplicate(kind: string, name: string): OmniRelayError {
  return new OmniRelayError({
    status: "already-exists",
    code: ErrorCodes.controlPlane.duplicate,
    message: `A ${kind} named '${name}' is already registered.`,
    metadata: { name },
  });
}
