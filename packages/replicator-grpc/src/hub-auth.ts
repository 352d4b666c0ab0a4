import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import { type Clock, ErrorCodes, type Logger, OmniRelayError } from "@omnirelay/core";
import { type JwtVerificationOptions, PrincipalBindingMiddleware } from "@omnirelay/core/middleware";
import { LogBudget } from "./log-budget.js";
import { isValidSourceId } from "./source.js";

/**
 * Who may publish and read what at a {@link GrpcReplicationHub}. A caller's identity is every name the hub verified:
 * the CN and the SAN DNS and URI entries of a client certificate the TLS handshake checked against `tls.ca`, and the
 * subject of a bearer JWT when `jwt` is set. Names from certificates and tokens share one namespace.
 */
export interface ReplicationHubAuthOptions {
  /**
   * Serve callers that present no identity as trusted: they may publish as any node id and read every source.
   * Only for a hub on a loopback or otherwise trusted network (tests, a sidecar). Callers that do present an identity
   * are still bound. The hub refuses to start without this when it has no way to authenticate (no `tls.ca`, no `jwt`).
   * @defaultValue false
   */
  readonly allowUnauthenticated?: boolean;
  /**
   * Verify `authorization: Bearer <jwt>` call metadata with core's JWT verification; the token's subject (or
   * `principalClaim`) becomes a name of the caller. Requires `tls` on the hub (a token must not cross plaintext) and
   * a non-empty `algorithms`. @defaultValue undefined (bearer tokens are ignored)
   */
  readonly jwt?: JwtVerificationOptions;
  /**
   * Identity name → node ids it may publish as, in addition to `selfGrant`. `'*'` = any node id (for a trusted relay).
   * @defaultValue {}
   */
  readonly publishers?: Readonly<Record<string, readonly string[]>>;
  /**
   * Identity name → node ids whose streams it may read (Subscribe, Checkpoint, ListSources); `'*'` = every source.
   * Identities without a grant read nothing but, with `selfGrant`, their own node id. @defaultValue {}
   */
  readonly subscribers?: Readonly<Record<string, readonly string[]>>;
  /** A caller may publish as, and read, a node id equal to one of its names (CN, a SAN DNS name, a JWT subject). @defaultValue true */
  readonly selfGrant?: boolean;
}

/** The part of a grpc-js server call the hub authenticates (grpc-js does not export its `AuthenticatedCall`). */
interface AuthenticatedCall {
  readonly metadata: Metadata;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
  getPeer(): string;
}

/** The verified names of a caller; `undefined` stands for an anonymous one. Internal. */
export interface CallerIdentity {
  readonly names: readonly string[];
}

/** The hub's RPCs as they appear in the `rpc` label of the denied-calls counter. */
export type ReplicationHubRpc = "publish" | "subscribe" | "checkpoint" | "list_sources";

/** Why the hub refused a call before it reached a source (the `reason` label). */
export type ReplicationHubDenialReason = "unauthenticated" | "permission_denied";

/** `observe` = read or publish: the checkpoint and listing of a source a caller may write or read. */
type Access = "publish" | "read" | "observe";

const ANY = "*";

/** Authenticates hub calls and decides which node ids a caller may publish as or read. Internal. */
export class HubAuthorizer {
  private readonly allowUnauthenticated: boolean;
  private readonly selfGrant: boolean;
  private readonly publishers: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly subscribers: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly jwt: PrincipalBindingMiddleware | undefined;
  private readonly logger: Logger;
  private readonly logBudget: LogBudget;
  private readonly denials = new Map<string, number>();

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(
    options: ReplicationHubAuthOptions | undefined,
    context: { tls: boolean; clientCertificates: boolean; logger: Logger; clock: Clock },
    // clientCertificates: the TLS handshake requires (and so verifies) one; grpc-js has no "optional" mode.
  ) {
    const o = options ?? {};
    this.logger = context.logger;
    this.logBudget = new LogBudget(context.clock);
    if (o.allowUnauthenticated !== undefined && typeof o.allowUnauthenticated !== "boolean") {
      throw OmniRelayError.invalidOption("auth.allowUnauthenticated");
    }
    if (o.selfGrant !== undefined && typeof o.selfGrant !== "boolean")
      throw OmniRelayError.invalidOption("auth.selfGrant");
    this.allowUnauthenticated = o.allowUnauthenticated ?? false;
    this.selfGrant = o.selfGrant ?? true;
    this.publishers = grants("auth.publishers", o.publishers);
    this.subscribers = grants("auth.subscribers", o.subscribers);
    if (o.jwt !== undefined && !context.tls) {
      throw OmniRelayError.invalidOption(
        "auth.jwt",
        "Option 'auth.jwt' needs 'tls': a bearer token must not cross plaintext.",
      );
    }
    if (o.jwt !== undefined && !(Array.isArray(o.jwt.algorithms) && o.jwt.algorithms.length > 0)) {
      // Unpinned, a token would choose how it is checked (DESIGN §10.4).
      throw OmniRelayError.invalidOption(
        "auth.jwt.algorithms",
        "Option 'auth.jwt.algorithms' must pin the accepted algorithms.",
      );
    }
    // Core's principal binding verifies the token (keys, algorithms, exp/nbf, issuer, audience); certificates are
    // read here, from grpc-js, so it only ever sees the authorization header.
    this.jwt =
      o.jwt === undefined
        ? undefined
        : new PrincipalBindingMiddleware({ acceptClientCertificates: false, jwt: o.jwt, logger: context.logger });
    if (!context.clientCertificates && this.jwt === undefined && !this.allowUnauthenticated) {
      throw OmniRelayError.invalidOption(
        "auth.allowUnauthenticated",
        "The hub cannot authenticate callers: configure mutual TLS ('tls.ca' with 'tls.requireClientCertificate') " +
          "or 'auth.jwt', or set 'auth.allowUnauthenticated' for a hub on a trusted network.",
      );
    }
    for (const rpc of ["publish", "subscribe", "checkpoint", "list_sources"] as const) {
      for (const reason of ["unauthenticated", "permission_denied"] as const) this.denials.set(`${rpc}|${reason}`, 0);
    }
  }

  /** Refused calls by RPC and reason, every combination listed (zeros too), for the metrics. */
  deniedCalls(): readonly { rpc: ReplicationHubRpc; reason: ReplicationHubDenialReason; count: number }[] {
    return [...this.denials].map(([key, count]) => {
      const [rpc, reason] = key.split("|") as [ReplicationHubRpc, ReplicationHubDenialReason];
      return { rpc, reason, count };
    });
  }

  /**
   * The caller's identity, or `undefined` for an anonymous caller the hub is configured to trust.
   * @throws OmniRelayError unauthenticated `omnirelay.auth.required` (no identity) or `omnirelay.auth.invalid_token`;
   *   unavailable `omnirelay.auth.keys_unavailable`.
   */
  async authenticate(call: AuthenticatedCall, rpc: ReplicationHubRpc): Promise<CallerIdentity | undefined> {
    const names = new Set(certificateNames(call));
    const subject = await this.tokenSubject(call, rpc);
    if (subject !== undefined) names.add(subject);
    if (names.size > 0) return { names: [...names] };
    if (this.allowUnauthenticated) return undefined;
    throw this.deny(
      call,
      { rpc, reason: "unauthenticated", identity: undefined },
      new OmniRelayError({
        status: "unauthenticated",
        code: ErrorCodes.auth.required,
        message: "The replication hub needs a verified client certificate or bearer token.",
        metadata: { rpc },
      }),
    );
  }

  /**
   * Authenticates the caller and checks that it may `access` `nodeId`.
   * @throws OmniRelayError unauthenticated (see {@link authenticate}); permission-denied
   *   `resourcelease.replication.grpc.permission_denied` (metadata `replication.source`, `rpc`).
   */
  async authorize(
    call: AuthenticatedCall,
    request: { rpc: ReplicationHubRpc; access: Access; nodeId: string },
  ): Promise<CallerIdentity | undefined> {
    const identity = await this.authenticate(call, request.rpc);
    if (this.may(identity, request.access, request.nodeId)) return identity;
    const verb = request.access === "publish" ? "publish as" : "read";
    throw this.deny(
      call,
      { rpc: request.rpc, reason: "permission_denied", identity },
      new OmniRelayError({
        status: "permission-denied",
        code: ErrorCodes.replicationHub.permissionDenied,
        message: `The caller (${describeIdentity(identity)}) may not ${verb} node id '${request.nodeId}'.`,
        metadata: { "replication.source": request.nodeId, rpc: request.rpc },
      }),
    );
  }

  /** Whether `identity` (undefined = a trusted anonymous caller) may `access` `nodeId`. */
  may(identity: CallerIdentity | undefined, access: Access, nodeId: string): boolean {
    if (access === "observe") return this.may(identity, "publish", nodeId) || this.may(identity, "read", nodeId);
    if (identity === undefined) return this.allowUnauthenticated;
    const table = access === "publish" ? this.publishers : this.subscribers;
    for (const name of identity.names) {
      if (this.selfGrant && name === nodeId) return true;
      const granted = table.get(name);
      if (granted && (granted.has(ANY) || granted.has(nodeId))) return true;
    }
    return false;
  }

  /**
   * Counts and logs a refusal (never the credential: names of the verified identity, the code, the peer); at most
   * five lines a second, the next line saying how many were suppressed.
   */
  private deny(
    call: AuthenticatedCall,
    refusal: { rpc: ReplicationHubRpc; reason: ReplicationHubDenialReason; identity: CallerIdentity | undefined },
    error: OmniRelayError,
  ): OmniRelayError {
    const key = `${refusal.rpc}|${refusal.reason}`;
    this.denials.set(key, (this.denials.get(key) ?? 0) + 1);
    const budget = this.logBudget.take();
    if (!budget.log) return error;
    this.logger.warn(
      {
        ...(budget.suppressed > 0 ? { suppressed: budget.suppressed } : {}),
        rpc: refusal.rpc,
        reason: refusal.reason,
        code: error.code,
        caller: describeIdentity(refusal.identity),
        peer: call.getPeer(),
        ...(error.metadata["replication.source"] ? { source: error.metadata["replication.source"] } : {}),
      },
      "replication hub refused a call",
    );
    return error;
  }

  private async tokenSubject(call: AuthenticatedCall, rpc: ReplicationHubRpc): Promise<string | undefined> {
    if (this.jwt === undefined) return undefined;
    const authorization = call.metadata.get("authorization").find((v): v is string => typeof v === "string");
    if (authorization === undefined) return undefined;
    let subject: string | undefined;
    try {
      await this.jwt.handle(
        {
          meta: {
            service: "omnirelay.replication.v1.ReplicationHub",
            procedure: rpc,
            transport: "grpc",
            headers: { authorization },
            signal: new AbortController().signal,
          },
          message: {},
        },
        async (request) => {
          subject = request.meta.principal;
          return { message: {} };
        },
      );
    } catch (error) {
      const e = OmniRelayError.from(error);
      if (e.status === "unauthenticated") this.deny(call, { rpc, reason: "unauthenticated", identity: undefined }, e);
      throw e;
    }
    return subject;
  }
}

/** The caller's names joined with `, ` (`'anonymous'` without any), for messages and logs. Internal. */
export function describeIdentity(identity: CallerIdentity | undefined): string {
  return identity === undefined ? "anonymous" : identity.names.join(", ");
}

/**
 * The names of the client certificate the TLS handshake verified: its CN, then its SAN DNS and URI entries.
 * grpc-js reports a peer certificate only when the socket is authorized (signed by the hub's CA).
 */
function certificateNames(call: AuthenticatedCall): string[] {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  for (const value of Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]) {
    if (value.trim()) names.push(value.trim());
  }
  for (const { kind, value } of parseSubjectAltNames(cert.subjectaltname ?? "")) {
    if ((kind === "DNS" || kind === "URI") && value.trim()) names.push(value.trim());
  }
  return names;
}

/**
 * Splits Node's `subjectaltname` text (`DNS:a, URI:spiffe://x, IP Address:1.2.3.4`). Node quotes a value holding a
 * comma or quote as a JSON string (`DNS:"a,b"`), so a crafted SAN cannot smuggle a second entry. Internal.
 */
export function parseSubjectAltNames(text: string): { kind: string; value: string }[] {
  const out: { kind: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const kind = text.slice(i, colon).trim();
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      } catch {
        value = "";
      }
      end = text.indexOf(",", end);
    } else {
      end = text.indexOf(",", colon);
      value = text.slice(colon + 1, end < 0 ? undefined : end);
    }
    out.push({ kind, value });
    if (end < 0) break;
    i = end + 1;
  }
  return out;
}

function grants(option: string, value: unknown): ReadonlyMap<string, ReadonlySet<string>> {
  const out = new Map<string, ReadonlySet<string>>();
  if (value === undefined) return out;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' maps identity names to arrays of node ids.`);
  }
  for (const [name, nodeIds] of Object.entries(value)) {
    if (!name.trim() || name !== name.trim()) {
      throw OmniRelayError.invalidOption(option, `Option '${option}' has a blank or padded identity name.`);
    }
    if (!Array.isArray(nodeIds))
      throw OmniRelayError.invalidOption(option, `Option '${option}.${name}' must be an array.`);
    for (const nodeId of nodeIds) {
      if (nodeId !== ANY && !(typeof nodeId === "string" && isValidSourceId({ nodeId, shard: "" }))) {
        throw OmniRelayError.invalidOption(
          option,
          `Option '${option}.${name}' holds '${String(nodeId)}': node ids are 1-128 characters of [A-Za-z0-9._-], or '*'.`,
        );
      }
    }
    out.set(name, new Set(nodeIds as string[]));
  }
  return out;
}
