import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../contracts/health.js";
import type { Dispatcher } from "../../dispatcher/dispatcher.js";

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
   * Most bytes of request bodies the inbound holds at once while they arrive, across every connection (a body gives
   * its bytes back once it is complete, refused or its client went away). A request whose body does not fit — its
   * `Content-Length` up front, else as its bytes arrive — is answered at once 429 `omnirelay.request.body_budget_exhausted`
   * (`RESOURCE_EXHAUSTED`, `Retry-After: 1`) and its connection is closed, the rest of the body unread. Without it,
   * clients that each stay within `maxBodyBytes` and `requestTimeoutMs` could make the inbound hold gigabytes. Never
   * less than `maxBodyBytes`. @defaultValue 268435456 (256 MiB: 64 bodies of the largest size at once)
   */
  readonly maxBufferedBodyBytes?: number;
  /**
   * Most open connections (`server.maxConnections`); one more is closed as soon as it is accepted, without an answer.
   * Worker sessions count (each holds its connection). @defaultValue no limit
   */
  readonly maxConnections?: number;
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
  /** Limits of worker sessions (WebSocket upgrades on `/omnirelay/session/{namespace}`; docs/protocol.md). */
  readonly sessions?: HttpInboundSessionOptions;
  readonly logger?: Logger;
}

/** Limits of the worker sessions an {@link HttpInboundOptions | HTTP inbound} serves. */
export interface HttpInboundSessionOptions {
  /** Most credit one session may hold; more is refused `omnirelay.session.credit_exceeded`. @defaultValue 1000 */
  readonly maxCredit?: number;
  /** A session silent for this long is closed `omnirelay.session.idle`. @defaultValue 60000 */
  readonly idleTimeoutMs?: number;
  /** Largest frame a worker may send; larger is refused `omnirelay.session.frame_too_large`. @defaultValue the inbound's `maxBodyBytes` */
  readonly maxFrameBytes?: number;
  /** Bytes left unsent to a worker before its session is cut `omnirelay.session.slow`. @defaultValue 16777216 */
  readonly maxBufferedBytes?: number;
  /**
   * A WebSocket ping goes to each worker this often; one not answered before the next ends the session
   * `omnirelay.session.idle` (metadata `reason: ping`) and marks the peer disconnected. @defaultValue 10000
   */
  readonly pingIntervalMs?: number;
  /**
   * Most live sessions on the inbound; one more is refused at open 429 `omnirelay.session.too_many`
   * (`RESOURCE_EXHAUSTED`, metadata `scope: inbound`). Each holds a waiting lease call while it has credit, about
   * 25 KiB, and a connection. @defaultValue 1024
   */
  readonly maxSessions?: number;
  /**
   * Most live sessions of one caller — its principal, else the subject of its verified client certificate, else its
   * remote address, as long polls are counted — on the inbound; one more is refused at open
   * `omnirelay.session.too_many` (metadata `scope: caller`). A fleet whose workers share one principal (or one
   * address) needs it at least the number of its workers on this node. @defaultValue 256 (the unary long-poll pool)
   */
  readonly maxSessionsPerCaller?: number;
}
