import {
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
} from "@grpc/grpc-js";
import {
  type Clock,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationSink,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import { closedError, GrpcReplicationErrorCodes, invalidOption } from "./codes.js";
import {
  type PublishAck,
  type PublishRequest,
  type ReplicationEvent,
  ReplicationHubService,
  type SubscribeRequest,
} from "./gen/omnirelay/replication/v1/hub.js";
import { HubSource, type ReplicationHubSourceStatus, type SourceWriter } from "./hub-source.js";
import { serveSubscribe } from "./hub-subscribe.js";
import { renderHubMetrics } from "./metrics.js";
import { checkSourceId, type ReplicationSourceId, sourceKey, sourceNotFound } from "./source.js";
import type { ReplicationHubStore } from "./store.js";
import { toServiceError } from "./wire.js";

/** Server TLS of a {@link GrpcReplicationHub}. PEM strings or buffers. */
export interface ReplicationHubTlsOptions {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /** CA that client certificates must chain to. Required with `requireClientCertificate`. */
  readonly ca?: string | Buffer;
  /** Mutual TLS: refuse clients without a certificate signed by `ca`. @defaultValue false */
  readonly requireClientCertificate?: boolean;
}

/** Options of a {@link GrpcReplicationHub}. */
export interface GrpcReplicationHubOptions {
  /** Where the per-source logs live. Required. */
  readonly store: ReplicationHubStore;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Server TLS; without it the hub speaks plaintext h2c. */
  readonly tls?: ReplicationHubTlsOptions;
  /**
   * Receive every stored event (metadata `replication.source` added), in order per source, before the batch is
   * acknowledged. A failing sink is logged and counted, never retried: durable consumers should use `Subscribe`.
   * @defaultValue []
   */
  readonly sinks?: readonly ResourceLeaseReplicationSink[];
  /** Largest accepted message. @defaultValue 16777216 (16 MiB) */
  readonly maxMessageBytes?: number;
  /** How long `close()` lets calls finish before cancelling them. @defaultValue 5000 */
  readonly shutdownGraceMs?: number;
  /** @defaultValue systemClock */
  readonly clock?: Clock;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/** Lifecycle of a {@link GrpcReplicationHub}. */
export type ReplicationHubState = "idle" | "starting" | "running" | "stopping" | "stopped";

/**
 * The replication hub: a gRPC server (`omnirelay.replication.v1.ReplicationHub`) that accepts ordered event streams
 * from many dispatchers (one per node id + shard), stores each through its own {@link ReplicationHubLog},
 * acknowledges by sequence number once stored, fans out to sinks, and serves each source's stream to subscribers.
 * Checkpoints are the logs' last sequence numbers, so they survive a restart.
 */
export class GrpcReplicationHub implements AsyncDisposable {
  private readonly options: GrpcReplicationHubOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly sources = new Map<string, Promise<HubSource>>();
  private readonly opened = new Map<string, HubSource>();
  private readonly open = new Set<(error: OmniRelayError) => void>();
  private server: Server | undefined;
  private current: ReplicationHubState = "idle";
  private boundPort = 0;
  private starting: Promise<{ port: number }> | undefined;
  private closing: Promise<void> | undefined;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: GrpcReplicationHubOptions) {
    if (!options?.store || typeof options.store.open !== "function") throw invalidOption("store");
    const { port = 0, maxMessageBytes = 16 * 1024 * 1024, shutdownGraceMs = 5000, tls } = options;
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw invalidOption("port");
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1024) throw invalidOption("maxMessageBytes");
    if (!Number.isSafeInteger(shutdownGraceMs) || shutdownGraceMs < 0) throw invalidOption("shutdownGraceMs");
    if (tls && (!tls.key || !tls.cert)) throw invalidOption(tls.key ? "tls.cert" : "tls.key");
    if (tls?.requireClientCertificate && !tls.ca) throw invalidOption("tls.ca");
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
  }

  /** Current lifecycle state. */
  get state(): ReplicationHubState {
    return this.current;
  }

  /** The bound port once running (0 before). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Opens the logs the store already has (so their checkpoints are reported at once), binds and serves.
   * Idempotent while running.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.grpc.closed` after close; unavailable
   *   `resourcelease.replication.grpc.store_failed` when a log cannot be opened or the address cannot be bound.
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

  /** Stops accepting calls, ends open streams, waits up to `shutdownGraceMs`, then closes the logs. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Status of every source the hub knows, sorted by key. */
  sourceStatuses(): readonly ReplicationHubSourceStatus[] {
    return [...this.opened.values()].sort((a, b) => a.key.localeCompare(b.key)).map((s) => s.status());
  }

  /** The hub's checkpoint (acknowledged sequence) of one source; `undefined` when it has none. */
  checkpoint(source: ReplicationSourceId): number | undefined {
    return this.opened.get(sourceKey(source))?.lastSequence;
  }

  /** Prometheus text exposition of the per-source gauges and counters (see `renderHubMetrics`). */
  metrics(): string {
    return renderHubMetrics(this.sourceStatuses(), { serving: this.current === "running" });
  }

  private async bind(): Promise<{ port: number }> {
    try {
      for (const id of await this.options.store.list()) await this.source(checkSourceId(id));
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
    });
    const publish: handleBidiStreamingCall<PublishRequest, PublishAck> = (call) => this.onPublish(call);
    const subscribe: handleServerStreamingCall<SubscribeRequest, ReplicationEvent> = (call) => {
      void serveSubscribe(call, { sources: this.opened, open: this.open });
    };
    const unary = <Req, Res>(fn: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> => {
      return (call, callback) => {
        fn(call.request).then(
          (res) => callback(null, res),
          (error: unknown) => callback(toServiceError(error)),
        );
      };
    };
    server.addService(ReplicationHubService, {
      publish,
      subscribe,
      checkpoint: unary(async (req: { nodeId: string; shard: string }) => {
        const source = this.opened.get(sourceKey(checkSourceId(req)));
        if (!source) throw sourceNotFound(req);
        return toStatusMessage(source.status());
      }),
      listSources: unary(async () => ({ sources: this.sourceStatuses().map(toStatusMessage) })),
      health: unary(async () => ({ serving: this.current === "running" })),
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
        code: GrpcReplicationErrorCodes.storeFailed,
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

  private source(id: ReplicationSourceId): Promise<HubSource> {
    const key = sourceKey(id);
    let pending = this.sources.get(key);
    if (!pending) {
      pending = this.openSource(id, key);
      this.sources.set(key, pending);
      pending.catch(() => this.sources.delete(key));
    }
    return pending;
  }

  private async openSource(id: ReplicationSourceId, key: string): Promise<HubSource> {
    try {
      const log = await this.options.store.open(id);
      const source = await HubSource.open(id, log, {
        sinks: this.options.sinks ?? [],
        clock: this.clock,
        logger: this.logger,
      });
      this.opened.set(key, source);
      return source;
    } catch (error) {
      throw new OmniRelayError({
        status: "unavailable",
        code: GrpcReplicationErrorCodes.storeFailed,
        message: `Cannot open the log of ${key}: ${error instanceof Error ? error.message : String(error)}`,
        metadata: { "replication.source": key },
        cause: error,
      });
    }
  }

  private onPublish(call: ServerDuplexStream<PublishRequest, PublishAck>): void {
    let source: HubSource | undefined;
    let done = false;
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      this.open.delete(finish);
      source?.detach(writer);
      if (error === undefined) call.end();
      else call.emit("error", toServiceError(error));
    };
    const writer: SourceWriter = {
      supersede: () =>
        finish(
          new OmniRelayError({
            status: "aborted",
            code: GrpcReplicationErrorCodes.superseded,
            message: "A newer publish stream of this source replaced this one.",
          }),
        ),
    };
    this.open.add(finish);
    const handle = async (message: PublishRequest): Promise<void> => {
      if (message.hello && !source) {
        const id = checkSourceId({ nodeId: message.hello.nodeId, shard: message.hello.shard });
        source = await this.source(id);
        source.noteHead(message.hello.headSequence);
        if (done) return;
        source.attach(writer);
        call.write({ ackedSequence: source.lastSequence });
      } else if (message.batch && source) {
        source.noteHead(message.batch.headSequence);
        const acked = await source.append(message.batch.events);
        if (!done) call.write({ ackedSequence: acked });
      } else {
        throw new OmniRelayError({
          status: "invalid-argument",
          code: GrpcReplicationErrorCodes.protocol,
          message: "A publish stream sends one hello first, then batches.",
          metadata: { field: message.hello ? "hello" : "batch" },
        });
      }
    };
    call.on("data", (message: PublishRequest) => {
      if (done) return;
      queued++;
      // Flow control: stop reading while batches wait for the log, so a fast source cannot fill the hub's memory.
      if (queued >= 8) call.pause();
      chain = chain.then(async () => {
        try {
          if (!done) await handle(message);
        } catch (error) {
          finish(error);
        } finally {
          queued--;
          if (queued <= 2 && call.isPaused()) call.resume();
        }
      });
    });
    call.on("end", () => {
      void chain.then(() => finish());
    });
    call.on("cancelled", () => {
      done = true;
      this.open.delete(finish);
      source?.detach(writer);
    });
    call.on("error", () => undefined);
  }

  private async shutdown(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const server = this.server;
    this.current = "stopping";
    for (const end of [...this.open]) end(closedError("replication hub"));
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, this.options.shutdownGraceMs ?? 5000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const source of this.opened.values()) {
      try {
        await source.log.close?.();
      } catch (error) {
        this.logger.warn({ source: source.key, error: String(error) }, "closing a hub log failed");
      }
    }
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
  };
}
