import type { Dispatcher, Logger } from "@omnirelay/core";

/** TLS settings of a {@link GrpcInbound}. PEM strings or buffers. */
export interface GrpcInboundTlsOptions {
  /** The server's private key. */
  readonly key: string | Buffer;
  /** The server's certificate chain. */
  readonly cert: string | Buffer;
  /** CA that client certificates must chain to (mutual TLS). Required with `requireClientCertificate`. */
  readonly ca?: string | Buffer;
  /** Refuse TLS handshakes without a client certificate signed by `ca`. @defaultValue false */
  readonly requireClientCertificate?: boolean;
}

/** Options of a {@link GrpcInbound}. */
export interface GrpcInboundOptions {
  /**
   * The dispatcher whose `{namespace}::{verb}` procedures the rpcs call. The inbound attaches itself to it:
   * `dispatcher.start()`/`stop()` start and drain it, and its clock is the one call deadlines are read against.
   */
  readonly dispatcher: Dispatcher;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Server TLS; without it the server is plaintext (h2c). */
  readonly tls?: GrpcInboundTlsOptions;
  /**
   * Largest accepted request message or session frame. Up to twice this (at most 16 MiB more) a larger one is refused
   * `omnirelay.request.too_large` (unary) or `omnirelay.session.frame_too_large` (session); past that grpc-js refuses
   * it (RESOURCE_EXHAUSTED, no OmniRelay trailers). @defaultValue 4194304 (4 MiB)
   */
  readonly maxMessageBytes?: number;
  /** How long `close()` waits for in-flight calls before it cancels them. @defaultValue 10000 */
  readonly shutdownGraceMs?: number;
  /**
   * Time a client has to send a unary call's whole request (its message and the end of its stream) once the call
   * started; a slower call is ended `DEADLINE_EXCEEDED` `omnirelay.request.timeout` (metadata `limitMs`) and the
   * part of its message that arrived is dropped. As on HTTP, a long poll is not affected: its request is complete
   * while it waits. Sessions are not either (their frames are bounded by `sessions.idleTimeoutMs`). @defaultValue 60000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Most calls (HTTP/2 streams) one connection may have open at once (`grpc.max_concurrent_streams`, announced in the
   * connection's SETTINGS); a stream over it is refused (`REFUSED_STREAM`, which clients retry once a stream is
   * free). Each may hold a request message of up to twice `maxMessageBytes` while it arrives, for at most
   * `requestTimeoutMs`. Sessions count. @defaultValue 100
   */
  readonly maxConcurrentStreams?: number;
  /** Limits of worker sessions (the `Session` rpc; docs/protocol.md, "Worker sessions"). */
  readonly sessions?: GrpcInboundSessionOptions;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/** Limits of the worker sessions a {@link GrpcInbound} serves (frames are capped by `maxMessageBytes`). */
export interface GrpcInboundSessionOptions {
  /** Most credit one session may hold; more is refused `omnirelay.session.credit_exceeded`. @defaultValue 1000 */
  readonly maxCredit?: number;
  /** A session silent for this long is closed `omnirelay.session.idle`. @defaultValue 60000 */
  readonly idleTimeoutMs?: number;
  /** Bytes left unsent to a worker before its session is cut `omnirelay.session.slow`. @defaultValue 16777216 */
  readonly maxBufferedBytes?: number;
  /**
   * HTTP/2 keepalive: the server pings every connection this often and closes one whose ping is not answered within
   * the same time, which ends its sessions (no more grants into a link that is down). @defaultValue 10000
   */
  readonly pingIntervalMs?: number;
  /**
   * Most live sessions on the inbound; one more is refused at open `RESOURCE_EXHAUSTED` `omnirelay.session.too_many`
   * (metadata `scope: inbound`). @defaultValue 1024
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
