import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { type Logger, silentLogger } from "../../contracts/health.js";
import type { Dispatcher } from "../../dispatcher/dispatcher.js";
import { DispatcherErrorCodes as Codes } from "../../dispatcher/json-codec.js";
import type { RequestMeta, TransportSecurity } from "../../dispatcher/types.js";
import { OmniRelayError, omniError } from "../../errors/omnirelay-error.js";
import { writeError } from "./errors.js";

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
  readonly dispatcher: Dispatcher;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Largest accepted request body. @defaultValue 4194304 (4 MiB) */
  readonly maxBodyBytes?: number;
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

/** Lifecycle of an inbound. */
export type InboundState = "idle" | "starting" | "running" | "draining" | "stopped";

/**
 * Serves a dispatcher over HTTP/1.1 (or HTTPS with optional mutual TLS): `POST` to any path with the procedure in
 * the `Rpc-Procedure` header (wire format in docs/protocol.md), plus `GET /healthz` and `GET /readyz`.
 */
export class HttpInbound implements AsyncDisposable {
  private readonly options: HttpInboundOptions;
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private server: Server | undefined;
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private current: InboundState = "idle";
  private boundPort = 0;

  constructor(options: HttpInboundOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  }

  /** Current lifecycle state. */
  get state(): InboundState {
    return this.current;
  }

  /** Base URL once started, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    const scheme = this.options.tls ? "https" : "http";
    return `${scheme}://${this.options.host ?? "127.0.0.1"}:${this.boundPort}`;
  }

  /** Starts listening; resolves with the bound port. Idempotent. */
  async start(): Promise<{ port: number; url: string }> {
    if (this.current === "running") return { port: this.boundPort, url: this.url };
    if (this.current !== "idle")
      throw omniError("failed-precondition", "omnirelay.inbound.state", `Cannot start from ${this.current}.`);
    this.current = "starting";
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      void this.handle(req, res);
    };
    const tls = this.options.tls;
    const server: Server = tls
      ? (createHttpsServer(
          {
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca ? { ca: tls.ca } : {}),
            requestCert: Boolean(tls.requestClientCertificate || tls.requireClientCertificate),
            rejectUnauthorized: Boolean(tls.requireClientCertificate),
          },
          listener,
        ) as unknown as Server)
      : createHttpServer(listener);
    server.keepAliveTimeout = this.options.keepAliveTimeoutMs ?? 65_000;
    server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.current = "running";
    return { port: this.boundPort, url: this.url };
  }

  /**
   * Graceful shutdown: new calls get 503 (`omnirelay.inbound.shutting_down`, `Retry-After: 1`), in-flight calls finish
   * (up to `graceMs`), then connections close.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
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
        new Promise<void>((resolve) => setTimeout(resolve, options.graceMs ?? 10_000).unref()),
      ]);
    }
    server.closeAllConnections();
    await closed;
    this.current = "stopped";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.active++;
    try {
      await this.route(req, res);
    } catch (error) {
      const err = error instanceof OmniRelayError ? error : OmniRelayError.from(error);
      if (err.status === "internal") this.logger.error({ err: error }, "HTTP inbound failed to handle a request.");
      writeError(res, err);
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
      writeError(res, omniError("not-found", "omnirelay.route.not_found", `No route for ${req.method} ${path}.`));
      return;
    }
    if (this.current !== "running") {
      req.resume();
      writeError(res, omniError("unavailable", Codes.shuttingDown, "The server is shutting down."), {
        "retry-after": "1",
      });
      return;
    }
    const headers = lowerHeaders(req);
    const procedure = headers["rpc-procedure"];
    if (!procedure) {
      req.resume();
      throw omniError("invalid-argument", Codes.procedureRequired, "The Rpc-Procedure header is required.", {
        header: "rpc-procedure",
      });
    }
    const deadline = parseDeadline(headers);
    const body = await readBody(req, this.maxBodyBytes, res);
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort(omniError("cancelled", Codes.cancelled, "The client went away."));
    };
    res.once("close", onClose);
    let timer: NodeJS.Timeout | undefined;
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
      const call = this.options.dispatcher.dispatch({ meta, body });
      const response =
        deadline === undefined
          ? await call
          : await Promise.race([
              call,
              new Promise<never>((_, reject) => {
                timer = setTimeout(
                  () => {
                    const err = omniError("deadline-exceeded", Codes.deadlineExceeded, "The call's deadline passed.");
                    abort.abort(err);
                    reject(err);
                  },
                  Math.max(0, deadline - Date.now()),
                );
              }),
            ]);
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": response.body.byteLength,
        "rpc-transport": "http",
        "rpc-encoding": response.encoding,
        "rpc-protocol": `HTTP/${req.httpVersion}`,
        ...response.headers,
      });
      res.end(response.body);
    } finally {
      if (timer) clearTimeout(timer);
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

function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

function parseDeadline(headers: Record<string, string>): number | undefined {
  const ttl = headers["rpc-ttl-ms"];
  if (ttl !== undefined) {
    const ms = Number(ttl);
    if (!/^\d{1,10}$/.test(ttl.trim()) || !Number.isSafeInteger(ms)) {
      throw omniError("invalid-argument", Codes.invalidHeader, "Rpc-Ttl-Ms must be a whole number of milliseconds.", {
        header: "rpc-ttl-ms",
      });
    }
    return Date.now() + ms;
  }
  const at = headers["rpc-deadline"];
  if (at !== undefined) {
    const ms = Date.parse(at);
    if (Number.isNaN(ms)) {
      throw omniError("invalid-argument", Codes.invalidHeader, "Rpc-Deadline must be an ISO-8601 time.", {
        header: "rpc-deadline",
      });
    }
    return ms;
  }
  return undefined;
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

async function readBody(req: IncomingMessage, limit: number, res: ServerResponse): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? "0");
  const tooLarge = () => {
    // Do not read megabytes we will refuse: answer and close the connection.
    res.setHeader("connection", "close");
    req.resume();
    return omniError("invalid-argument", Codes.bodyTooLarge, `The request body exceeds ${limit} bytes.`, {
      field: "body",
      limit: String(limit),
    });
  };
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
