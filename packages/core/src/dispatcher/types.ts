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
  /** Request headers / gRPC metadata, keys lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly security?: TransportSecurity;
  /** Aborts when the caller goes away or the deadline passes. */
  readonly signal: AbortSignal;
}

/** A unary request: metadata and the encoded body. */
export interface UnaryRequest {
  readonly meta: RequestMeta;
  readonly body: Uint8Array;
}

/** A unary response: the encoded body and extra response headers. */
export interface UnaryResponse {
  readonly body: Uint8Array;
  readonly encoding: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Handles a unary call. Throws `OmniRelayError` for failures. */
export type UnaryHandler = (request: UnaryRequest) => Promise<UnaryResponse>;

/** Wraps a unary call on the server side (principal binding, tracing, metrics, rate limits, deadlines, authz). */
export interface UnaryInboundMiddleware {
  handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse>;
}

/** Sends a unary call to a remote dispatcher (HTTP, gRPC). */
export interface UnaryOutbound {
  call(request: UnaryRequest): Promise<UnaryResponse>;
  close?(): Promise<void>;
}

/** Wraps a unary call on the client side. */
export interface UnaryOutboundMiddleware {
  handle(request: UnaryRequest, next: (request: UnaryRequest) => Promise<UnaryResponse>): Promise<UnaryResponse>;
}

/** A registered procedure. */
export interface ProcedureSpec {
  /** Full name, e.g. `resourcelease::enqueue`. */
  readonly name: string;
  readonly handler: UnaryHandler;
  /** Extra middleware for this procedure only, run after the dispatcher's chain. */
  readonly middleware?: readonly UnaryInboundMiddleware[];
  /** Free-form labels (e.g. `{ kind: 'resourcelease', verb: 'lease', namespace: 'resourcelease' }`). */
  readonly labels?: Readonly<Record<string, string>>;
}
