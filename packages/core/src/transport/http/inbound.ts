import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { type Logger, silentLogger } from "../../contracts/health.js";
import type { LifecycleState } from "../../contracts/lifecycle.js";
import type { Dispatcher } from "../../dispatcher/dispatcher.js";
import { decodeJsonBody, encodeJsonBody } from "../../dispatcher/json-codec.js";
import type { RequestMeta, TransportSecurity } from "../../dispatcher/types.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { readRequestDeadline } from "../../middleware/deadline-headers.js";
import { optionalPositive } from "../../middleware/options.js";
import { rawErrorResponse, writeError } from "./errors.js";

/** TLS settings of an {@link HttpInbound}. PEM strings or buffers. */
export interface HttpInboundTlsOptions {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /** CA that client certificates must chain to (mutual TLS). */
  readonly ca?: string | Buffer;
  /** Ask for a client certificate; calls without a verified one then carry no certificate identity. */
  readonly requestClientCertificate?: boolean;
  /** Refuse TLS handshakes without a client certificate signed by `ca`. */
  readonly requireClientCertificate?: boolean;
}

/** A readiness check: `undefined` when ready, else a short reason. */
export type ReadinessCheck = () => string | undefined;

/** Options of an {@link HttpInbound}. */
export interface HttpInboundOptions {
  /** The dispatcher to serve. The inbound attaches itself to it: `dispatcher.start()`/`stop()` start and drain it. */
  readonly dispatcher: Dispatcher;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Largest accepted request body; a larger one is answered 413 `omnirelay.request.too_large`. @defaultValue 4194304 (4 MiB) */
  readonly maxBodyBytes?: number;
  /**
   * How much of an oversized request body is read and thrown away before the 413 is sent, so that a client still
   * sending gets the answer rather than a connection reset. A body declared or found to be larger gets the 413 at
   * once and the connection is closed under it. Never less than `maxBodyBytes`. @defaultValue 16777216 (16 MiB)
   */
  readonly maxDiscardedBodyBytes?: number;
  /**
   * Time a client has to send a whole request, headers and body; a slower one is answered 408
   * `omnirelay.request.timeout` and disconnected. Checked every quarter of this (at most every 30 s), so the cut
   * comes up to 25% late. A long poll is not affected: its request is complete while it waits. @defaultValue 60000
   */
  readonly requestTimeoutMs?: number;
  /** Keep-alive idle timeout. @defaultValue 65000 */
  readonly keepAliveTimeoutMs?: number;
  readonly tls?: HttpInboundTlsOptions;
  /** Extra checks for `/readyz` (e.g. "log open", "replication caught up"). */
  readonly readiness?: readonly ReadinessCheck[];
  /**
   * Handles requests that are not RPCs — any method but POST (other than /healthz and /readyz), and POSTs under
   * `/omnirelay/control/` — e.g. a diagnostics control plane. Returns `true` when it handled the request. Without
   * one, such requests get 404.
   */
  readonly fallback?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  readonly logger?: Logger;
}

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
  private server: Server | undefined;
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
    options.dispatcher.addInbound(this);
  }

  /** Current lifecycle state. */
  get state(): LifecycleState {
    return this.current;
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
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    // `Expect: 100-continue`: refuse an oversized body before the client sends it.
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      if ((declaredLength(req) ?? 0) > this.maxBodyBytes) {
        writeError(res, this.tooLarge(), { connection: "close" });
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
    const body = await this.readBody(req, res);
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished)
        abort.abort(
          new OmniRelayError({ status: "cancelled", code: ErrorCodes.rpc.cancelled, message: "The client went away." }),
        );
    };
    res.once("close", onClose);
    const meta: RequestMeta = {
      service: this.options.dispatcher.service,
      procedure,
      transport: "http",
      headers,
      signal: abort.signal,
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

  /**
   * Reads the request body. An oversized one is read and discarded up to `maxDiscardedBodyBytes` (so the client
   * reads our 413 instead of a reset), then refused with `Connection: close`.
   * @throws OmniRelayError invalid-argument `omnirelay.request.too_large`; cancelled `omnirelay.cancelled` when the
   * client goes away mid-body.
   */
  private async readBody(req: IncomingMessage, res: ServerResponse): Promise<Uint8Array> {
    const declared = declaredLength(req);
    const tooLarge = () => {
      res.setHeader("connection", "close");
      return this.tooLarge();
    };
    if (declared !== undefined && declared > this.maxDiscardedBodyBytes) throw tooLarge();
    const read = await collectBody(req, this.maxBodyBytes, this.maxDiscardedBodyBytes);
    if (read === "too-large") throw tooLarge();
    return read;
  }

  private tooLarge(): OmniRelayError {
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestTooLarge,
      message: `The request body exceeds ${this.maxBodyBytes} bytes.`,
      metadata: {
        field: "body",
        limit: String(this.maxBodyBytes),
      },
    });
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

function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

function security(req: IncomingMessage): TransportSecurity {
  const socket = req.socket as TLSSocket;
  const remoteAddress = socket.remoteAddress;
  if (typeof socket.getPeerCertificate !== "function" || !socket.authorized) {
    return { clientCertificateVerified: false, ...(remoteAddress ? { remoteAddress } : {}) };
  }
  const cert = socket.getPeerCertificate();
  const subject = cert?.subject;
  const cn = subject && typeof subject.CN === "string" ? subject.CN : undefined;
  const full = subject
    ? Object.entries(subject)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")
    : undefined;
  const name = cn ?? full;
  return {
    clientCertificateVerified: Boolean(name),
    ...(name ? { clientCertificateSubject: name } : {}),
    ...(remoteAddress ? { remoteAddress } : {}),
  };
}

/** The `Content-Length` of a request, when it has a valid one. */
function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers["content-length"];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Collects a request body of at most `limit` bytes. Past the limit the rest is read and dropped until the body ends
 * (`"too-large"`) or `discardLimit` bytes were read in all (`"too-large"`, reading stops and the body is left
 * unread). Rejects with `omnirelay.cancelled` when the client goes away first.
 */
function collectBody(req: IncomingMessage, limit: number, discardLimit: number): Promise<Uint8Array | "too-large"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (outcome: () => void) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (chunks.length > 0) chunks.length = 0;
      if (size > discardLimit) {
        req.pause();
        finish(() => resolve("too-large"));
      }
    };
    const onEnd = () =>
      finish(() => {
        if (size > limit) resolve("too-large");
        else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      });
    const onGone = () =>
      finish(() =>
        reject(
          new OmniRelayError({
            status: "cancelled",
            code: ErrorCodes.rpc.cancelled,
            message: "The client went away while sending the request.",
          }),
        ),
      );
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}
