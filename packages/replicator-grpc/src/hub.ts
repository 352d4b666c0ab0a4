import {
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
} from "@grpc/grpc-js";
import {
  type Clock,
  ErrorCodes,
  type LifecycleState,
  type Logger,
  OmniRelayError,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import { batchTooLarge, countBatchEvents } from "./batch-limit.js";
import { MalformedMessage, tolerantDeserializers } from "./deserialize.js";
import { closedError } from "./errors.js";
import {
  type PublishAck,
  type PublishRequest,
  type ReplicationEvent,
  ReplicationHubService,
  type SubscribeRequest,
} from "./gen/omnirelay/replication/v1/hub.js";
import { helloTimeout } from "./hello-timeout.js";
import { HubAuthorizer } from "./hub-auth.js";
import type { GrpcReplicationHubOptions } from "./hub-options.js";
import { servePublish } from "./hub-publish.js";
import type { ReplicationHubSourceStatus } from "./hub-source.js";
import { HubSources } from "./hub-sources.js";
import { serveSubscribe } from "./hub-subscribe.js";
import { renderHubMetrics } from "./metrics.js";
import { checkSourceId, type ReplicationSourceId, sourceKey } from "./source.js";
import { toServiceError } from "./wire.js";

/**
 * The replication hub: a gRPC server (`omnirelay.replication.v1.ReplicationHub`) that accepts ordered event streams
 * from many dispatchers (one per node id + shard), stores each through its own {@link ReplicationHubLog},
 * acknowledges by sequence number once stored, fans out to sinks, and serves each source's stream to subscribers.
 * Checkpoints are the logs' last sequence numbers, so they survive a restart.
 *
 * Every call but Health is authenticated (client certificate or JWT, see {@link ReplicationHubAuthOptions}); a caller
 * may publish only as a node id its identity is bound to, each source has one live publish stream, a re-sent event is
 * acknowledged only if it equals the stored one, and subscribers read only the sources they are granted.
 */
export class GrpcReplicationHub implements AsyncDisposable {
  private readonly options: GrpcReplicationHubOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly sources: HubSources;
  private readonly open = new Set<(error: OmniRelayError) => void>();
  private readonly authorizer: HubAuthorizer;
  private readonly helloTimeoutMs: number;
  private readonly maxConcurrentStreams: number;
  private readonly maxBatchEvents: number;
  private server: Server | undefined;
  private current: LifecycleState = "idle";
  private boundPort = 0;
  private starting: Promise<{ port: number }> | undefined;
  private closing: Promise<void> | undefined;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for an option out of
   *   range (`maxFailedSources`, `helloTimeoutMs`, `maxConcurrentStreams` or `maxBatchEvents` below 1, for
   *   example), among others when the hub could not authenticate anyone (no mutual TLS, no `auth.jwt`) and
   *   `auth.allowUnauthenticated` is not set (option `auth.allowUnauthenticated`), and for `auth.jwt` without `tls`
   *   (option `auth.jwt`).
   */
  constructor(options: GrpcReplicationHubOptions) {
    if (!options?.store || typeof options.store.open !== "function") throw OmniRelayError.invalidOption("store");
    const { tls } = options;
    const _port = integerOption("port", options.port, { min: 0, max: 65_535, fallback: 0 });
    const _maxMessageBytes = integerOption("maxMessageBytes", options.maxMessageBytes, {
      min: 1024,
      fallback: 16 * 1024 * 1024,
    });
    const _shutdownGraceMs = integerOption("shutdownGraceMs", options.shutdownGraceMs, { min: 0, fallback: 5000 });
    if (tls && (!tls.key || !tls.cert)) throw OmniRelayError.invalidOption(tls.key ? "tls.cert" : "tls.key");
    if (tls?.requireClientCertificate && !tls.ca) throw OmniRelayError.invalidOption("tls.ca");
    const _busySourceWaitMs = integerOption("busySourceWaitMs", options.busySourceWaitMs, { min: 0, fallback: 1000 });
    const retryMs = integerOption("failedSourceRetryMs", options.failedSourceRetryMs, { min: 0, fallback: 5000 });
    const maxFailed = integerOption("maxFailedSources", options.maxFailedSources, { min: 1, fallback: 1000 });
    this.helloTimeoutMs = integerOption("helloTimeoutMs", options.helloTimeoutMs, {
      min: 1,
      max: 2 ** 31 - 1,
      fallback: 10_000,
    });
    this.maxBatchEvents = integerOption("maxBatchEvents", options.maxBatchEvents, { min: 1, fallback: 10_000 });
    this.maxConcurrentStreams = integerOption("maxConcurrentStreams", options.maxConcurrentStreams, {
      min: 1,
      max: 2 ** 31 - 1,
      fallback: 100,
    });
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.sources = new HubSources({
      store: options.store,
      sinks: options.sinks ?? [],
      clock: this.clock,
      logger: this.logger,
      retryMs,
      maxFailed,
    });
    this.authorizer = new HubAuthorizer(options.auth, {
      tls: tls !== undefined,
      clientCertificates: Boolean(tls?.requireClientCertificate),
      logger: this.logger,
      clock: this.clock,
    });
  }

  /** Current lifecycle state: `draining` while `close()` ends streams and lets calls finish. */
  get state(): LifecycleState {
    return this.current;
  }

  /** The bound port once running (0 before). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Opens the logs the store already has (so their checkpoints are reported at once), binds and serves.
   * Idempotent while running. A log that cannot be opened does not stop the start: it is logged at error level, the
   * source is listed as failed (`sourceStatuses()`, `metrics()`, ListSources) and its calls are answered with the
   * open error, while every other source is served (see `failedSourceRetryMs`).
   * @throws OmniRelayError failed-precondition `resourcelease.replication.grpc.closed` after close; unavailable
   *   `resourcelease.replication.grpc.store_failed` when the address cannot be bound; whatever the store's `list()`
   *   throws (the whole store, not one source).
   */
  start(): Promise<{ port: number }> {
    if (this.current === "running") return Promise.resolve({ port: this.boundPort });
    if (this.starting) return this.starting;
    if (this.current !== "idle") return Promise.reject(closedError("replication hub"));
    this.current = "starting";
    this.starting = this.bind().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /**
   * Stops accepting calls, ends open streams, waits up to `graceMs` for calls to finish, then closes the logs.
   * Idempotent; a `start()` in progress finishes first.
   * @param options.graceMs - how long calls may take to finish. @defaultValue `shutdownGraceMs` (5000)
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(options.graceMs ?? this.options.shutdownGraceMs ?? 5000);
    return this.closing;
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Status of every source the hub knows, sorted by key; a source whose log failed to open has `failed` set. */
  sourceStatuses(): readonly ReplicationHubSourceStatus[] {
    return this.sources.statuses();
  }

  /** Failed sources forgotten since the start to stay within `maxFailedSources` (see that option). */
  get failedSourcesEvicted(): number {
    return this.sources.evicted;
  }

  /** The hub's checkpoint (acknowledged sequence) of one source; `undefined` when it has none or it failed to open. */
  checkpoint(source: ReplicationSourceId): number | undefined {
    return this.sources.opened.get(sourceKey(source))?.lastSequence;
  }

  /** Prometheus text exposition of the per-source gauges and counters and the refused calls (see `renderHubMetrics`). */
  metrics(): string {
    return renderHubMetrics(this.sourceStatuses(), {
      serving: this.current === "running",
      deniedCalls: this.authorizer.deniedCalls(),
      failedSourcesEvicted: this.sources.evicted,
    });
  }

  private async bind(): Promise<{ port: number }> {
    try {
      await this.sources.openListed();
    } catch (error) {
      this.current = "idle";
      throw error;
    }
    const server = new Server({
      "grpc.max_receive_message_length": this.options.maxMessageBytes ?? 16 * 1024 * 1024,
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 1_000,
      "grpc.max_concurrent_streams": this.maxConcurrentStreams,
      interceptors: [helloTimeout(this.helloTimeoutMs)],
    });
    const publish: handleBidiStreamingCall<PublishRequest, PublishAck> = (call) =>
      servePublish(call, {
        open: this.open,
        authorizer: this.authorizer,
        busySourceWaitMs: this.options.busySourceWaitMs ?? 1000,
        source: (id) => this.sources.forPublish(id),
      });
    const subscribe: handleServerStreamingCall<SubscribeRequest, ReplicationEvent> = (call) => {
      void serveSubscribe(call, {
        source: (id) => this.sources.get(id),
        open: this.open,
        authorizer: this.authorizer,
      });
    };
    const unary = <Req, Res>(
      rpc: string,
      fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
    ): handleUnaryCall<Req, Res> => {
      return (call, callback) => {
        const request: unknown = call.request;
        if (request instanceof MalformedMessage) {
          callback(toServiceError(request.error(rpc)));
          return;
        }
        fn(call).then(
          (res) => callback(null, res),
          (error: unknown) => callback(toServiceError(error)),
        );
      };
    };
    // Undecodable requests (an int64 past 2^53, bytes that are not the rpc's message) reach the handlers as
    // MalformedMessage and are answered INVALID_ARGUMENT with a code, not grpc-js's INTERNAL.
    const maxBatchEvents = this.maxBatchEvents;
    // A batch's events are counted on the wire before it is decoded: a 16 MiB message of a million tiny events
    // decodes to over half a GiB, while a replicator never sends more than its `maxBatchEvents` (256).
    const checkBatch = (bytes: Buffer) => {
      const count = countBatchEvents(bytes);
      return count !== undefined && count > maxBatchEvents ? batchTooLarge(count, maxBatchEvents) : undefined;
    };
    server.addService(tolerantDeserializers(ReplicationHubService, { publish: checkBatch }), {
      publish,
      subscribe,
      checkpoint: unary("checkpoint", async (call: ServerUnaryCall<{ nodeId: string; shard: string }, unknown>) => {
        const id = checkSourceId(call.request);
        // Authorized before the lookup, so a caller without a grant cannot probe which sources exist.
        await this.authorizer.authorize(call, { rpc: "checkpoint", access: "observe", nodeId: id.nodeId });
        return toStatusMessage(this.sources.get(id).status());
      }),
      listSources: unary("list_sources", async (call) => {
        const identity = await this.authorizer.authenticate(call, "list_sources");
        const visible = this.sourceStatuses().filter((s) => this.authorizer.may(identity, "observe", s.nodeId));
        return { sources: visible.map(toStatusMessage) };
      }),
      health: unary("health", async () => ({ serving: this.current === "running" })),
    });
    const host = this.options.host?.trim() || "127.0.0.1";
    const address = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
    try {
      this.boundPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`${address}:${this.options.port ?? 0}`, this.credentials(), (error, port) =>
          error ? reject(error) : resolve(port),
        );
      });
    } catch (error) {
      server.forceShutdown();
      this.current = "idle";
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.replicationHub.storeFailed,
        message: `Cannot bind the replication hub to ${address}:${this.options.port ?? 0}: ${(error as Error).message}`,
        cause: error,
      });
    }
    this.server = server;
    this.current = "running";
    return { port: this.boundPort };
  }

  private credentials(): ServerCredentials {
    const tls = this.options.tls;
    if (!tls) return ServerCredentials.createInsecure();
    return ServerCredentials.createSsl(
      tls.ca ? Buffer.from(tls.ca) : null,
      [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }],
      Boolean(tls.requireClientCertificate),
    );
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const server = this.server;
    this.current = "draining";
    for (const end of [...this.open]) end(closedError("replication hub"));
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.sources.closeAll();
    this.current = "stopped";
  }
}

function toStatusMessage(s: ReplicationHubSourceStatus) {
  return {
    nodeId: s.nodeId,
    shard: s.shard,
    lastSequence: s.lastSequence,
    headSequence: s.headSequence,
    lag: s.lag,
    connected: s.connected,
    failed: s.failed && {
      code: s.failed.code,
      causeCode: s.failed.causeCode ?? "",
      message: s.failed.message,
      since: s.failed.since,
      lastAttemptAt: s.failed.lastAttemptAt,
    },
  };
}
