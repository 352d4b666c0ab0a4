import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../../contracts/health.js";
import type { Dispatcher } from "../../dispatcher/dispatcher.js";
import { decodeJsonBody } from "../../dispatcher/json-codec.js";
import type { RequestMeta } from "../../dispatcher/types.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { optionalPositive } from "../../middleware/options.js";
import type { ResourceLeaseSession } from "../../resourcelease/session.js";
import { SessionClientFrameMessage, SessionServerFrameMessage } from "../../resourcelease/session-messages.js";
import { openResourceLeaseSession, type SessionCaps, type SessionLimits } from "../../resourcelease/session-open.js";
import { integerOption } from "../../wire/options.js";
import { requestSite } from "../../wire/site.js";
import { rawErrorResponse } from "./errors.js";
import type { HttpInboundSessionOptions } from "./inbound-options.js";
import { lowerHeaders, security } from "./request.js";

/** Path prefix of worker sessions on an HTTP inbound: `GET /omnirelay/session/{namespace}` with `Upgrade: websocket`. */
export const SESSION_PATH = "/omnirelay/session/";

/** Options of the HTTP inbound's worker sessions. Internal. */
export interface HttpSessionServerOptions extends SessionLimits {
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  /** Largest frame a worker may send (bytes of its JSON). */
  readonly maxFrameBytes: number;
  /** Most bytes left unsent to a worker before its session is closed as slow. @defaultValue 16 MiB */
  readonly maxBufferedBytes?: number;
  /** Most live sessions on the inbound. @defaultValue 1024 */
  readonly maxSessions?: number;
  /** Most live sessions of one caller (principal, else verified certificate subject, else address). @defaultValue 256 */
  readonly maxSessionsPerCaller?: number;
}

/** Default of `sessions.maxSessions` (HTTP and gRPC inbounds). */
export const DEFAULT_MAX_SESSIONS = 1024;
/** Default of `sessions.maxSessionsPerCaller` (HTTP and gRPC inbounds): the unary long-poll pool's size. */
export const DEFAULT_MAX_SESSIONS_PER_CALLER = 256;

/**
 * The session server's options from an HTTP inbound's `sessions` (checked), its dispatcher and logger; frames are
 * at most `maxBodyBytes` unless `sessions.maxFrameBytes` says otherwise.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a bad option.
 */
export function httpSessionServerOptions(
  sessions: HttpInboundSessionOptions,
  base: { dispatcher: Dispatcher; logger: Logger; maxBodyBytes: number },
): HttpSessionServerOptions {
  const maxCredit = optionalPositive("sessions.maxCredit", sessions.maxCredit);
  const idleTimeoutMs = optionalPositive("sessions.idleTimeoutMs", sessions.idleTimeoutMs);
  const maxBufferedBytes = optionalPositive("sessions.maxBufferedBytes", sessions.maxBufferedBytes);
  const pingIntervalMs = optionalPositive("sessions.pingIntervalMs", sessions.pingIntervalMs);
  return {
    dispatcher: base.dispatcher,
    logger: base.logger,
    maxFrameBytes: optionalPositive("sessions.maxFrameBytes", sessions.maxFrameBytes) ?? base.maxBodyBytes,
    ...(maxCredit !== undefined ? { maxCredit: Math.floor(maxCredit) } : {}),
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(maxBufferedBytes !== undefined ? { maxBufferedBytes } : {}),
    ...(pingIntervalMs !== undefined ? { pingIntervalMs } : {}),
    maxSessions: integerOption("sessions.maxSessions", sessions.maxSessions, {
      min: 1,
      fallback: DEFAULT_MAX_SESSIONS,
    }),
    maxSessionsPerCaller: integerOption("sessions.maxSessionsPerCaller", sessions.maxSessionsPerCaller, {
      min: 1,
      fallback: DEFAULT_MAX_SESSIONS_PER_CALLER,
    }),
  };
}

/** WebSocket close codes of a session, by error code (the error frame sent before says the rest). */
const CLOSE_CODES: Readonly<Record<string, number>> = {
  [ErrorCodes.rpc.sessionFrameInvalid]: 4400,
  [ErrorCodes.rpc.sessionFrameTooLarge]: 4413,
  [ErrorCodes.rpc.sessionCreditExceeded]: 4429,
  [ErrorCodes.rpc.sessionSlow]: 4429,
  [ErrorCodes.rpc.sessionIdle]: 4408,
  [ErrorCodes.rpc.inboundShuttingDown]: 1001,
};

/**
 * Worker sessions over WebSocket on an HTTP inbound (docs/protocol.md, "Worker sessions"): the upgrade request passes
 * the same middleware as the unary verbs before it is accepted; then each text message is one JSON frame. Internal.
 */
export class HttpSessionServer {
  private readonly o: HttpSessionServerOptions;
  private readonly wss: WebSocketServer;
  private readonly live = new Set<ResourceLeaseSession>();
  private readonly caps: SessionCaps;

  constructor(options: HttpSessionServerOptions) {
    this.o = options;
    this.caps = {
      maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
      maxSessionsPerCaller: options.maxSessionsPerCaller ?? DEFAULT_MAX_SESSIONS_PER_CALLER,
      live: { total: 0, perCaller: new Map() },
    };
    // Frames past the limit get a coded error from us; ws itself only cuts those far past it (close code 1009).
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxFrameBytes + 1024 * 1024,
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** Handles an `upgrade` request of the inbound's server (`running`: the inbound takes new calls). */
  async upgrade(request: { req: IncomingMessage; socket: Duplex; head: Buffer; running: boolean }): Promise<void> {
    const { req, socket, head, running } = request;
    socket.on("error", () => socket.destroy());
    try {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      if (!running) {
        throw new OmniRelayError({
          status: "unavailable",
          code: ErrorCodes.rpc.inboundShuttingDown,
          message: "The server is shutting down.",
        });
      }
      if (!path.startsWith(SESSION_PATH) || req.method !== "GET" || path.length === SESSION_PATH.length) {
        throw new OmniRelayError({
          status: "not-found",
          code: ErrorCodes.rpc.routeNotFound,
          message: `No upgrade route for ${req.method} ${path}.`,
        });
      }
      const namespace = sessionNamespace(path.slice(SESSION_PATH.length), path);
      let ws: WebSocket | undefined;
      const abort = new AbortController();
      const headers = lowerHeaders(req);
      const meta: RequestMeta = {
        service: this.o.dispatcher.service,
        procedure: `${namespace}::lease`,
        transport: "http",
        headers,
        signal: abort.signal,
        security: security(req),
        encoding: "json",
        ...(headers["rpc-caller"] ? { caller: headers["rpc-caller"] } : {}),
      };
      const session = await openResourceLeaseSession(this.o.dispatcher, {
        namespace,
        meta,
        caps: this.caps,
        ...(this.o.maxCredit !== undefined ? { maxCredit: this.o.maxCredit } : {}),
        ...(this.o.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.o.idleTimeoutMs } : {}),
        sink: {
          send: (frame) => {
            if (ws?.readyState !== 1) return;
            ws.send(JSON.stringify(SessionServerFrameMessage.write(frame, "json")));
            if (ws.bufferedAmount > (this.o.maxBufferedBytes ?? 16 * 1024 * 1024)) {
              session.end(
                new OmniRelayError({
                  status: "resource-exhausted",
                  code: ErrorCodes.rpc.sessionSlow,
                  message: "The worker does not read its session.",
                  metadata: { limit: String(this.o.maxBufferedBytes ?? 16 * 1024 * 1024) },
                }),
              );
            }
          },
          close: (error) => {
            this.live.delete(session);
            abort.abort();
            if (!ws) return socket.destroy();
            // A worker that does not read would not answer a close handshake either.
            if (error?.code === ErrorCodes.rpc.sessionSlow) return ws.terminate();
            ws.close(error ? (CLOSE_CODES[error.code] ?? 4500) : 1000, error?.code ?? "");
          },
        },
      });
      if (socket.destroyed) {
        session.end();
        return;
      }
      this.live.add(session);
      // A handshake ws refuses (a bad Sec-WebSocket-Key, …) closes the socket without an accepted WebSocket.
      socket.once("close", () => {
        if (!ws) session.end();
      });
      this.wss.handleUpgrade(req, socket, head, (accepted) => {
        ws = accepted;
        this.attach(accepted, session);
      });
    } catch (thrown) {
      const error = OmniRelayError.from(thrown);
      this.o.logger.debug({ code: error.code }, "Refused a worker session.");
      if (socket.writable) socket.end(rawErrorResponse(error), () => socket.destroy());
      else socket.destroy();
    }
  }

  /** Ends every session (the inbound is closing); workers keep their leases and reconnect elsewhere or later. */
  close(): void {
    const error = new OmniRelayError({
      status: "unavailable",
      code: ErrorCodes.rpc.inboundShuttingDown,
      message: "The server is shutting down.",
    });
    for (const session of [...this.live]) session.fail(error);
  }

  private attach(ws: WebSocket, session: ResourceLeaseSession): void {
    const maxFrameBytes = this.o.maxFrameBytes;
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (bytes.byteLength > maxFrameBytes) {
        session.fail(
          new OmniRelayError({
            status: "resource-exhausted",
            code: ErrorCodes.rpc.sessionFrameTooLarge,
            message: `A session frame holds at most ${maxFrameBytes} bytes.`,
            metadata: { limit: String(maxFrameBytes) },
          }),
        );
        return;
      }
      try {
        if (isBinary) throw new TypeError("binary frame");
        const frame = SessionClientFrameMessage.read(decodeJsonBody(bytes), requestSite("", maxFrameBytes));
        session.receive(frame);
      } catch (thrown) {
        const cause = OmniRelayError.from(thrown);
        session.fail(
          new OmniRelayError({
            status: "invalid-argument",
            code: ErrorCodes.rpc.sessionFrameInvalid,
            message: `Invalid session frame: ${cause.message}`,
            metadata: { ...(cause.metadata?.field ? { field: cause.metadata.field } : {}), reason: cause.code },
          }),
        );
      }
    });
    ws.on("error", (error) => this.o.logger.debug({ err: error }, "A worker session's socket failed."));
    const stopPinging = this.ping(ws, session);
    ws.on("close", (code: number) => {
      stopPinging();
      // 1006: the socket closed without a close frame (the worker's process or link went away)
      if (code === 1006) session.lost();
      else session.end();
    });
  }

  /** Pings the worker every `pingIntervalMs`; no pong before the next ping ends the session. Returns the stop. */
  private ping(ws: WebSocket, session: ResourceLeaseSession): () => void {
    const every = this.o.pingIntervalMs ?? 10_000;
    let answered = true;
    ws.on("pong", () => {
      answered = true;
      session.alive();
    });
    const timer = setInterval(() => {
      if (!answered) {
        ws.terminate(); // no close handshake with a worker that does not answer
        return session.unresponsive(every);
      }
      answered = false;
      ws.ping();
    }, every);
    timer.unref();
    return () => clearInterval(timer);
  }
}

/**
 * The namespace a session path names, percent-decoded. A path that is not valid percent-encoding (`%ZZ`, a cut UTF-8
 * sequence) names no namespace: not-found `omnirelay.route.not_found`, as any other path without a session route.
 */
function sessionNamespace(encoded: string, path: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new OmniRelayError({
      status: "not-found",
      code: ErrorCodes.rpc.routeNotFound,
      message: `No upgrade route for ${path}: its namespace is not valid percent-encoding.`,
    });
  }
}
