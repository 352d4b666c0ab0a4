import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type Logger, silentLogger } from "../../contracts/health.js";
import type { LifecycleState } from "../../contracts/lifecycle.js";
import { decodeJsonBody, encodeJsonBody } from "../../dispatcher/json-codec.js";
import type { RequestMeta } from "../../dispatcher/types.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { readRequestDeadline } from "../../middleware/deadline-headers.js";
import { optionalPositive } from "../../middleware/options.js";
import { callAbort, type WithCallAbort } from "../../util/signals.js";
import { integerOption } from "../../wire/options.js";
import { BodyBudget } from "./body-budget.js";
import { rawErrorResponse, writeError } from "./errors.js";
import type { HttpInboundOptions } from "./inbound-options.js";
import { budgetExhausted, declaredLength, lowerHeaders, readBody, requestTooLarge, security } from "./request.js";
import { HttpSessionServer, httpSessionServerOptions } from "./session-server.js";

/** Default of `maxBufferedBodyBytes`: 64 bodies of the default `maxBodyBytes` at once. */
const DEFAULT_MAX_BUFFERED_BODY_BYTES = 256 * 1024 * 1024;

/**
 * Serves a dispatcher over HTTP/1.1 (or HTTPS with optional mutual TLS): `POST` to any path with the procedure in
 * the `Rpc-Procedure` header (wire format in docs/protocol.md), plus `GET /healthz` and `GET /readyz`. The inbound reads
 * a call's deadline headers (against the dispatcher's clock) into `meta.deadline` and decodes its body; the dispatcher
 * enforces the deadline, so a call whose deadline has already passed is answered 504 `omnirelay.deadline_exceeded`
 * before any middleware or procedure runs.
 */
export class HttpInbound implements AsyncDisposable {
  private readonly options: HttpInboundOptions;
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private readonly maxDiscardedBodyBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly bodies: BodyBudget;
  private server: Server | undefined;
  private readonly sessions: HttpSessionServer;
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private current: LifecycleState = "idle";
  private boundPort = 0;
  private starting: Promise<{ port: number; url: string }> | undefined;
  private closing: Promise<void> | undefined;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) when a size or time
   * option is not a finite number > 0; failed-precondition `omnirelay.lifecycle.state` when the dispatcher has already
   * started or stopped (attach inbounds before `dispatcher.start()`).
   */
  constructor(options: HttpInboundOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.maxBodyBytes = optionalPositive("maxBodyBytes", options.maxBodyBytes) ?? 4 * 1024 * 1024;
    this.maxDiscardedBodyBytes = Math.max(
      this.maxBodyBytes,
      optionalPositive("maxDiscardedBodyBytes", options.maxDiscardedBodyBytes) ?? 16 * 1024 * 1024,
    );
    this.requestTimeoutMs = optionalPositive("requestTimeoutMs", options.requestTimeoutMs) ?? 60_000;
    this.bodies = new BodyBudget(
      Math.max(
        this.maxBodyBytes,
        optionalPositive("maxBufferedBodyBytes", options.maxBufferedBodyBytes) ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
      ),
    );
    if (options.maxConnections !== undefined) integerOption("maxConnections", options.maxConnections, { min: 1 });
    this.sessions = new HttpSessionServer(
      httpSessionServerOptions(options.sessions ?? {}, {
        dispatcher: options.dispatcher,
        logger: this.logger,
        maxBodyBytes: this.maxBodyBytes,
      }),
    );
    options.dispatcher.addInbound(this);
  }

  /** Current lifecycle state. */
  get state(): LifecycleState {
    return this.current;
  }

  /** Bytes of request bodies held now while they arrive (at most `maxBufferedBodyBytes`). */
  get bufferedBodyBytes(): number {
    return this.bodies.inUse;
  }

  /** Base URL once started, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    const scheme = this.options.tls ? "https" : "http";
    return `${scheme}://${this.options.host ?? "127.0.0.1"}:${this.boundPort}`;
  }

  /**
   * Starts listening; resolves with the bound port. Idempotent while starting or running. When the address cannot be
   * bound the inbound is `idle` again and may retry.
   * @throws OmniRelayError failed-precondition `omnirelay.inbound.state` once closing or closed; the listen error.
   */
  start(): Promise<{ port: number; url: string }> {
    if (this.current === "running") return Promise.resolve({ port: this.boundPort, url: this.url });
    if (this.starting) return this.starting;
    if (this.current !== "idle") {
      return Promise.reject(
        new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.rpc.inboundState,
          message: `Cannot start from ${this.current}.`,
        }),
      );
    }
    this.current = "starting";
    this.starting = this.listen().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /**
   * Graceful shutdown: new calls get 503 (`omnirelay.inbound.shutting_down`, `Retry-After: 1`), in-flight calls finish
   * (up to `graceMs`), then connections close. Idempotent; a `start()` in progress finishes first.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(options.graceMs ?? 10_000);
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async listen(): Promise<{ port: number; url: string }> {
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      void this.handle(req, res);
    };
    const timeouts = {
      requestTimeout: this.requestTimeoutMs,
      headersTimeout: this.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(this.requestTimeoutMs / 4))),
    };
    const tls = this.options.tls;
    const server: Server = tls
      ? (createHttpsServer(
          {
            ...timeouts,
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca ? { ca: tls.ca } : {}),
            requestCert: Boolean(tls.requestClientCertificate || tls.requireClientCertificate),
            rejectUnauthorized: Boolean(tls.requireClientCertificate),
          },
          listener,
        ) as unknown as Server)
      : createHttpServer(timeouts, listener);
    server.keepAliveTimeout = this.options.keepAliveTimeoutMs ?? 65_000;
    if (this.options.maxConnections !== undefined) server.maxConnections = this.options.maxConnections;
    // Worker sessions: a WebSocket upgrade that passes the unary verbs' middleware (docs/protocol.md).
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.sessions.upgrade({ req, socket, head, running: this.current === "running" });
    });
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    // `Expect: 100-continue`: refuse an oversized body, or one the body budget has no room for, before it is sent.
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      const declared = declaredLength(req) ?? 0;
      if (declared > this.maxBodyBytes) {
        writeError(res, requestTooLarge(this.maxBodyBytes), { connection: "close" });
        return;
      }
      if (!this.bodies.fits(declared)) {
        writeError(res, budgetExhausted(res, this.bodies));
        return;
      }
      res.writeContinue();
      listener(req, res);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      this.current = "idle";
      throw error;
    }
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.current = "running";
    return { port: this.boundPort, url: this.url };
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const server = this.server;
    if (!server || this.current === "stopped") {
      this.current = "stopped";
      return;
    }
    this.current = "draining";
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.sessions.close();
    server.closeIdleConnections();
    if (this.active > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    server.closeAllConnections();
    await closed;
    this.current = "stopped";
  }

  /**
   * Answers what Node's HTTP parser refused: 408 when the request did not arrive within `requestTimeoutMs`, 431 for
   * oversized headers, 400 for anything malformed. A connection the client already dropped is only closed.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || !socket.writable || inFlight?.headersSent) {
      this.logger.debug({ code: err.code }, "An HTTP connection was reset by its client.");
      socket.destroy();
      return;
    }
    const error =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new OmniRelayError({
            status: "deadline-exceeded",
            code: ErrorCodes.rpc.requestTimeout,
            message: `The request was not received within ${this.requestTimeoutMs} ms.`,
            metadata: { limitMs: String(this.requestTimeoutMs) },
          })
        : err.code === "HPE_HEADER_OVERFLOW"
          ? new OmniRelayError({
              status: "invalid-argument",
              code: ErrorCodes.rpc.requestHeadersTooLarge,
              message: "The request headers are too large.",
            })
          : new OmniRelayError({
              status: "invalid-argument",
              code: ErrorCodes.rpc.requestMalformedHttp,
              message: "The request is not valid HTTP/1.1.",
              metadata: {
                reason: String(err.code ?? "unknown"),
              },
            });
    this.logger.debug({ code: err.code }, "Refused a malformed or slow HTTP request.");
    // Flush the answer, then drop the connection whatever the client does next.
    socket.end(rawErrorResponse(error), () => socket.destroy());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.active++;
    try {
      await this.route(req, res);
    } catch (error) {
      const err = error instanceof OmniRelayError ? error : OmniRelayError.from(error);
      if (res.destroyed || req.socket.destroyed || !req.socket.writable) {
        // A client that hangs up mid-call is normal traffic, not a server fault: no stack, no error level.
        this.logger.debug(
          { code: err.code, procedure: req.headers["rpc-procedure"] },
          "The HTTP client went away before its call was answered.",
        );
      } else {
        if (err.status === "internal") this.logger.error({ err: error }, "HTTP inbound failed to handle a request.");
        writeError(res, err);
      }
    } finally {
      this.active--;
      if (this.active === 0 && this.idleWaiters.length > 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) return this.health(path, res);
    // The control plane's POST endpoints (runtime toggles) share the RPC port: they are not RPCs.
    if (req.method === "POST" && path?.startsWith("/omnirelay/control/") && this.options.fallback) {
      if (await this.options.fallback(req, res)) return;
    }
    if (req.method !== "POST") {
      if (this.options.fallback && (await this.options.fallback(req, res))) return;
      req.resume();
      writeError(
        res,
        new OmniRelayError({
          status: "not-found",
          code: ErrorCodes.rpc.routeNotFound,
          message: `No route for ${req.method} ${path}.`,
        }),
      );
      return;
    }
    if (this.current !== "running") {
      req.resume();
      writeError(
        res,
        new OmniRelayError({
          status: "unavailable",
          code: ErrorCodes.rpc.inboundShuttingDown,
          message: "The server is shutting down.",
        }),
        {
          "retry-after": "1",
        },
      );
      return;
    }
    const headers = lowerHeaders(req);
    const procedure = headers["rpc-procedure"];
    if (!procedure) {
      req.resume();
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.rpc.requestProcedureRequired,
        message: "The Rpc-Procedure header is required.",
        metadata: {
          header: "rpc-procedure",
        },
      });
    }
    const dispatcher = this.options.dispatcher;
    const deadline = readRequestDeadline(headers, { now: dispatcher.clock.now() });
    const body = await readBody(req, res, {
      maxBodyBytes: this.maxBodyBytes,
      maxDiscardedBodyBytes: this.maxDiscardedBodyBytes,
      budget: this.bodies,
    });
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished)
        abort.abort(
          new OmniRelayError({ status: "cancelled", code: ErrorCodes.rpc.cancelled, message: "The client went away." }),
        );
    };
    res.once("close", onClose);
    const meta: RequestMeta & WithCallAbort = {
      service: this.options.dispatcher.service,
      procedure,
      transport: "http",
      headers,
      signal: abort.signal,
      [callAbort]: abort, // the deadline step aborts this signal rather than building its own
      security: security(req),
      ...(headers["rpc-caller"] ? { caller: headers["rpc-caller"] } : {}),
      ...(headers["rpc-shard-key"] ? { shardKey: headers["rpc-shard-key"] } : {}),
      encoding: "json",
      ...(deadline !== undefined ? { deadline } : {}),
    };
    try {
      const spec = dispatcher.resolve(procedure);
      // The body is decoded and checked once, here; the dispatcher enforces the deadline before anything runs.
      const response = await dispatcher.dispatch({ meta, message: spec.readRequest(decodeJsonBody(body)) });
      const json = encodeJsonBody(spec.definition.response.write(response.message, "json"));
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": json.byteLength,
        "rpc-transport": "http",
        "rpc-encoding": "json",
        "rpc-protocol": `HTTP/${req.httpVersion}`,
        ...response.headers,
      });
      res.end(json);
    } finally {
      res.off("close", onClose);
    }
  }

  private health(path: string, res: ServerResponse): void {
    const live = path === "/healthz";
    const issues: string[] = [];
    if (this.current !== "running") issues.push(`inbound ${this.current}`);
    if (!live) {
      for (const check of this.options.readiness ?? []) {
        try {
          const issue = check();
          if (issue) issues.push(issue);
        } catch (error) {
          issues.push(`readiness check failed: ${(error as Error).message}`);
        }
      }
    }
    const ok = issues.length === 0;
    const text = JSON.stringify({
      status: ok ? "ok" : "unavailable",
      mode: live ? "live" : "ready",
      issues,
      activeRequests: this.active - 1,
      draining: this.current === "draining",
    });
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json; charset=utf-8" });
    res.end(text);
  }
}
