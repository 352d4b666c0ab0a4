import {
  type handleUnaryCall,
  Metadata,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  ErrorCodes,
  type LifecycleState,
  type Logger,
  OmniRelayError,
  type RequestMeta,
  silentLogger,
  systemClock,
} from "@omnirelay/core";
import { callAbort, readRequestDeadline, type WithCallAbort } from "@omnirelay/core/middleware";
import { integerOption } from "@omnirelay/core/wire";
import { isLegalHeaderValue, isLegalMetadataKey, metadataToHeaders, transportSecurity } from "./call-meta.js";
import { grpcReceiveLimit, tolerantDeserializers, UndecodedRequest } from "./deserialize.js";
import { ResourceLeaseServiceService } from "./gen/omnirelay/resourcelease/v1/resourcelease.js";
import type { GrpcInboundOptions } from "./inbound-options.js";
import { type ResourceLeaseRpc, resourceLeaseRpcs } from "./mapping/procedures.js";
import { receiveTimeout } from "./receive-timeout.js";
import { GrpcSessions } from "./session.js";
import { toGrpcStatus } from "./status.js";

const MIB = 1024 * 1024;

const DEFAULT_NAMESPACE = "resourcelease";
const DEADLINE_SLACK_MS = 25;

/**
 * Serves the `{namespace}::{verb}` procedures of a dispatcher as the gRPC service
 * `omnirelay.resourcelease.v1.ResourceLeaseService` (proto in `proto/`). Each call runs through the dispatcher's
 * middleware like an HTTP call: the namespace comes from the `rpc-namespace` metadata (default `resourcelease`),
 * errors carry their status as the gRPC code and their code, message and metadata as `omnirelay-*` trailers.
 * The inbound reads a call's deadline (the gRPC deadline, `rpc-ttl-ms`, `rpc-deadline`) into `meta.deadline` and
 * decodes its message; the dispatcher enforces the deadline, so a call whose deadline has already passed is answered
 * DEADLINE_EXCEEDED before any middleware or procedure runs.
 */
export class GrpcInbound implements AsyncDisposable {
  private readonly options: GrpcInboundOptions;
  private readonly logger: Logger;
  private server: Server | undefined;
  private current: LifecycleState = "idle";
  private boundPort = 0;
  private starting: Promise<{ port: number }> | undefined;
  private closing: Promise<void> | undefined;
  private readonly calls = new Set<AbortController>();
  private readonly sessions: GrpcSessions;
  private readonly pingIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxConcurrentStreams: number;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for bad options;
   * failed-precondition `omnirelay.lifecycle.state` when the dispatcher has already started or stopped (attach
   * inbounds before `dispatcher.start()`).
   */
  constructor(options: GrpcInboundOptions) {
    if (!options?.dispatcher || typeof options.dispatcher.dispatch !== "function")
      throw OmniRelayError.invalidOption("dispatcher");
    const { tls } = options;
    const _port = integerOption("port", options.port, { min: 0, max: 65_535, fallback: 0 });
    const _maxMessageBytes = integerOption("maxMessageBytes", options.maxMessageBytes, { min: 1, fallback: 4 * MIB });
    const _shutdownGraceMs = integerOption("shutdownGraceMs", options.shutdownGraceMs, { min: 0, fallback: 10_000 });
    if (options.host !== undefined && (typeof options.host !== "string" || options.host.trim() === "")) {
      throw OmniRelayError.invalidOption("host");
    }
    if (tls) {
      if (!tls.key) throw OmniRelayError.invalidOption("tls.key");
      if (!tls.cert) throw OmniRelayError.invalidOption("tls.cert");
      if (tls.requireClientCertificate && !tls.ca) throw OmniRelayError.invalidOption("tls.ca");
    }
    this.requestTimeoutMs = integerOption("requestTimeoutMs", options.requestTimeoutMs, { min: 1, fallback: 60_000 });
    this.maxConcurrentStreams = integerOption("maxConcurrentStreams", options.maxConcurrentStreams, {
      min: 1,
      max: 2 ** 31 - 1,
      fallback: 100,
    });
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    const sessions = options.sessions ?? {};
    this.pingIntervalMs = integerOption("sessions.pingIntervalMs", sessions.pingIntervalMs, {
      min: 1,
      fallback: 10_000,
    });
    this.sessions = new GrpcSessions({
      maxCredit: integerOption("sessions.maxCredit", sessions.maxCredit, { min: 1, fallback: 1000 }),
      idleTimeoutMs: integerOption("sessions.idleTimeoutMs", sessions.idleTimeoutMs, { min: 1, fallback: 60_000 }),
      maxBufferedBytes: integerOption("sessions.maxBufferedBytes", sessions.maxBufferedBytes, {
        min: 1,
        fallback: 16 * MIB,
      }),
      dispatcher: options.dispatcher,
      logger: this.logger,
      tls: Boolean(tls),
      maxFrameBytes: _maxMessageBytes,
      maxSessions: integerOption("sessions.maxSessions", sessions.maxSessions, { min: 1, fallback: 1024 }),
      maxSessionsPerCaller: integerOption("sessions.maxSessionsPerCaller", sessions.maxSessionsPerCaller, {
        min: 1,
        fallback: 256,
      }),
    });
    options.dispatcher.addInbound(this);
  }

  /** Current lifecycle state. */
  get state(): LifecycleState {
    return this.current;
  }

  /** The bound port once started (0 before). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Binds and starts serving; resolves with the bound port. Idempotent while running.
   * @throws OmniRelayError failed-precondition `omnirelay.inbound.state` once closing or closed; unavailable
   *   `omnirelay.inbound.bind_failed` when the address cannot be bound.
   */
  start(): Promise<{ port: number }> {
    if (this.current === "running") return Promise.resolve({ port: this.boundPort });
    if (this.starting) return this.starting;
    if (this.current !== "idle") {
      return Promise.reject(
        new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.rpc.inboundState,
          message: `Cannot start a gRPC inbound that is ${this.current}.`,
        }),
      );
    }
    this.current = "starting";
    this.starting = this.bind().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /**
   * Graceful shutdown: refuses new calls (UNAVAILABLE `omnirelay.inbound.shutting_down`), lets in-flight calls finish
   * for up to `graceMs`, then cancels them and closes every connection. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(options.graceMs ?? this.options.shutdownGraceMs ?? 10_000);
    return this.closing;
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async bind(): Promise<{ port: number }> {
    const maxMessageBytes = this.options.maxMessageBytes ?? 4 * MIB;
    const server = new Server({
      "grpc.max_receive_message_length": grpcReceiveLimit(maxMessageBytes),
      "grpc.keepalive_time_ms": this.pingIntervalMs,
      "grpc.keepalive_timeout_ms": this.pingIntervalMs,
      "grpc.max_concurrent_streams": this.maxConcurrentStreams,
      interceptors: [receiveTimeout(this.requestTimeoutMs)],
    });
    const implementation: UntypedServiceImplementation = {};
    for (const rpc of Object.values(resourceLeaseRpcs)) {
      const handler: handleUnaryCall<unknown, unknown> = (call, callback) => {
        void this.serve(rpc, call, callback);
      };
      implementation[rpc.name] = handler;
    }
    implementation.session = (call: ServerDuplexStream<unknown, unknown>) => {
      void this.sessions.serve(call, this.current === "running");
    };
    server.addService(tolerantDeserializers(ResourceLeaseServiceService, { maxMessageBytes }), implementation);
    const host = this.options.host?.trim() ?? "127.0.0.1";
    const address = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${this.options.port ?? 0}`;
    try {
      this.boundPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(address, this.credentials(), (error, port) => (error ? reject(error) : resolve(port)));
      });
    } catch (error) {
      server.forceShutdown();
      this.current = this.closing ? "stopped" : "idle";
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.inboundBindFailed,
        message: `Cannot bind gRPC inbound to ${address}: ${(error as Error).message}`,
        metadata: { address },
        cause: error,
      });
    }
    // A close() that came in while binding waits for this and then shuts the server down.
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
    if (!server || this.current === "stopped") {
      this.current = "stopped";
      return;
    }
    this.current = "draining";
    this.sessions.close();
    let timer: NodeJS.Timeout | undefined;
    const shutdownDone = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)));
    const drained = await Promise.race([
      shutdownDone,
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      // Answer the stragglers UNAVAILABLE (so callers retry elsewhere), give the statuses a moment to flush, then cut.
      const reason = shuttingDown("The server shut down before the call finished.");
      for (const call of this.calls) call.abort(reason);
      await new Promise<void>((resolve) => {
        const flush = setTimeout(resolve, 100);
        void shutdownDone.then(() => {
          clearTimeout(flush);
          resolve();
        });
      });
      server.forceShutdown();
    }
    this.current = "stopped";
  }

  private async serve(
    rpc: ResourceLeaseRpc,
    call: ServerUnaryCall<unknown, unknown>,
    callback: sendUnaryData<unknown>,
  ): Promise<void> {
    if (this.current !== "running") {
      callback(toGrpcStatus(shuttingDown("The server is shutting down.")));
      return;
    }
    if (call.request instanceof UndecodedRequest) {
      callback(toGrpcStatus(call.request.error(rpc.name)));
      return;
    }
    const dispatcher = this.options.dispatcher;
    const clock = dispatcher.clock;
    const abort = new AbortController();
    let deadline: number | undefined;
    const onCancelled = () => {
      if (abort.signal.aborted) return;
      // A client gives up at its deadline with a plain cancel, which reaches us about when our copy of the deadline
      // (sent relative, so shifted by the network latency) expires: call that a deadline expiry, not a cancel.
      const atDeadline = deadline !== undefined && clock.now() >= deadline - DEADLINE_SLACK_MS;
      abort.abort(atDeadline ? deadlineExceeded() : cancelledByClient());
    };
    this.calls.add(abort);
    call.on("cancelled", onCancelled);
    if (call.cancelled) onCancelled();
    try {
      const headers = metadataToHeaders(call.metadata);
      const now = clock.now();
      deadline = readRequestDeadline(headers, { now, transportDeadline: grpcDeadline(call, now) });
      const namespace = headers["rpc-namespace"]?.trim() || DEFAULT_NAMESPACE;
      const meta: RequestMeta & WithCallAbort = {
        service: this.options.dispatcher.service,
        procedure: `${namespace}::${rpc.verb}`,
        transport: "grpc",
        encoding: "protobuf",
        headers,
        signal: abort.signal,
        [callAbort]: abort, // the dispatcher's deadline step aborts this signal rather than building its own
        security: transportSecurity(call, Boolean(this.options.tls)),
        ...(headers["rpc-caller"] ? { caller: headers["rpc-caller"] } : {}),
        ...(headers["rpc-shard-key"] ? { shardKey: headers["rpc-shard-key"] } : {}),
        ...(deadline !== undefined ? { deadline } : {}),
      };
      const spec = dispatcher.resolve(meta.procedure);
      // The message is decoded and checked once, here; the dispatcher enforces the deadline before anything runs.
      const message = spec.readRequest(rpc.fromRequest(call.request as Record<string, unknown>));
      // Answer as soon as the call is aborted (cancel, shutdown), even if the procedure ignores its signal; the
      // dispatcher does the same when the deadline passes.
      const interrupted = new Promise<never>((_, reject) => {
        const fail = () => reject(abort.signal.reason);
        if (abort.signal.aborted) fail();
        else abort.signal.addEventListener("abort", fail, { once: true });
      });
      const response = await Promise.race([dispatcher.dispatch({ meta, message }), interrupted]);
      const answer = rpc.toResponse(spec.definition.response.write(response.message, "proto"));
      const initial = responseMetadata(response.headers);
      if (initial) call.sendMetadata(initial);
      callback(null, answer);
    } catch (error) {
      const err = OmniRelayError.from(error);
      if (err.status === "internal") this.logger.error({ err: error, rpc: rpc.name }, "gRPC inbound call failed.");
      callback(toGrpcStatus(err));
    } finally {
      call.off("cancelled", onCancelled);
      this.calls.delete(abort);
    }
  }
}

function deadlineExceeded(): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.deadlineExceeded,
    message: "The call's deadline passed.",
  });
}

function cancelledByClient(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.rpc.cancelled,
    message: "The client cancelled the call.",
  });
}

function shuttingDown(message: string): OmniRelayError {
  return new OmniRelayError({ status: "unavailable", code: ErrorCodes.rpc.inboundShuttingDown, message });
}

/**
 * The call's gRPC deadline on the dispatcher's clock. grpc-js reckons it on the wall clock (receipt time plus the
 * `grpc-timeout` the client sent), so what is left of it is measured there — on the wall clock on purpose, not the
 * injected one — and added to `now`.
 */
function grpcDeadline(call: ServerUnaryCall<unknown, unknown>, now: number): number | undefined {
  const raw = call.getDeadline();
  const at = raw instanceof Date ? raw.getTime() : raw;
  if (typeof at !== "number" || !Number.isFinite(at)) return undefined;
  return now + (at - systemClock.now());
}

/** Response headers a procedure set, as initial metadata (entries gRPC cannot carry are left out). */
function responseMetadata(headers: Readonly<Record<string, string>> | undefined): Metadata | undefined {
  if (!headers) return undefined;
  const metadata = new Metadata();
  let count = 0;
  for (const [rawKey, value] of Object.entries(headers)) {
    const key = rawKey.toLowerCase();
    if (!isLegalMetadataKey(key) || !isLegalHeaderValue(value)) continue;
    metadata.set(key, value);
    count++;
  }
  return count > 0 ? metadata : undefined;
}
