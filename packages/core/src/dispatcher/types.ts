import type { WireMessage } from "../wire/message.js";

/** How the transport authenticated the connection (filled by inbounds; read by PrincipalBindingMiddleware). */
export interface TransportSecurity {
  /** The TLS handshake verified the client certificate against the configured CA. */
  readonly clientCertificateVerified: boolean;
  /** Subject of the verified client certificate (its CN when present, else the full subject). */
  readonly clientCertificateSubject?: string;
  /** Remote IP address of the connection (used for trusted-proxy rules). */
  readonly remoteAddress?: string;
}

/** Transports that can carry a call. */
export type TransportKind = "http" | "grpc" | "in-process";

/**
 * Everything known about a call besides its body. Immutable: middleware that adds information passes a new
 * object to `next` (`{ ...meta, principal }`).
 */
export interface RequestMeta {
  readonly service: string;
  /** Procedure name as sent; matched case-insensitively. */
  readonly procedure: string;
  readonly transport: TransportKind;
  /** `Rpc-Caller`: the caller's self-declared name. Not an identity. */
  readonly caller?: string;
  readonly encoding?: string;
  /** `Rpc-Shard-Key`. */
  readonly shardKey?: string;
  /** Absolute deadline, ms since the epoch (from `Rpc-Ttl-Ms` or a gRPC deadline). */
  readonly deadline?: number;
  /** Authenticated principal, set only by PrincipalBindingMiddleware (verified certificate or JWT). */
  readonly principal?: string;
  /**
   * When the credential that bound `principal` stops being valid, ms since the epoch: a bearer JWT's `exp` plus the
   * clock tolerance. Set only by PrincipalBindingMiddleware, beside `principal`. A worker session (which passes the
   * middleware once, at open) ends then, unauthenticated `omnirelay.auth.invalid_token` (reason `expired`).
   */
  readonly credentialExpiresAt?: number;
  /** Request headers / gRPC metadata, keys lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly security?: TransportSecurity;
  /** Aborts when the caller goes away or the deadline passes. */
  readonly signal: AbortSignal;
}

/**
 * A unary call as middleware and handlers see it: its metadata and its request message, already decoded and checked
 * by the transport that received it (HTTP from JSON, gRPC from protobuf, in-process as given). Middleware reads
 * metadata; it never parses bytes.
 */
export interface UnaryRequest<Req = unknown> {
  readonly meta: RequestMeta;
  readonly message: Req;
}

/** A unary answer: the response message, and extra response headers. */
export interface UnaryResponse<Res = unknown> {
  readonly message: Res;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Handles a unary call. Throws `OmniRelayError` for failures. */
export type UnaryHandler = (request: UnaryRequest) => Promise<UnaryResponse>;

/** Wraps a unary call on the server side (principal binding, tracing, metrics, rate limits, deadlines, authz). */
export interface UnaryInboundMiddleware {
  handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse>;
}

/**
 * A procedure's contract: its verb (the procedure is `{namespace}::{verb}`) and its request and response messages,
 * each described once in the wire layer. Transports encode and decode with it; handlers see domain values.
 */
export interface ProcedureDefinition<Req = unknown, Res = unknown> {
  /** The family of procedures it belongs to: `resourcelease` for core's, absent for custom JSON procedures. */
  readonly family?: string;
  readonly verb: string;
  readonly request: WireMessage<Req>;
  readonly response: WireMessage<Res>;
}

/** Sends a unary call to a remote dispatcher (HTTP, gRPC), encoding it as its definition says. */
export interface UnaryOutbound {
  call<Req, Res>(definition: ProcedureDefinition<Req, Res>, request: UnaryRequest<Req>): Promise<UnaryResponse<Res>>;
  close?(): Promise<void>;
}

/** A registered procedure. */
export interface ProcedureSpec<Req = unknown, Res = unknown> {
  /** Full name, e.g. `resourcelease::enqueue`. */
  readonly name: string;
  readonly definition: ProcedureDefinition<Req, Res>;
  /**
   * Reads a request as a transport received it (parsed JSON, a protobuf-shaped object, an in-process value) and
   * checks it with this procedure's limits — the one place a request is validated.
   * @throws OmniRelayError invalid-argument naming the field.
   */
  readonly readRequest: (value: unknown) => Req;
  readonly handler: (request: Req, meta: RequestMeta) => Promise<Res>;
  /** Extra middleware for this procedure only, run after the dispatcher's chain. */
  readonly middleware?: readonly UnaryInboundMiddleware[];
  /** Free-form labels (e.g. `{ kind: 'resourcelease', verb: 'lease', namespace: 'resourcelease' }`). */
  readonly labels?: Readonly<Record<string, string>>;
}
