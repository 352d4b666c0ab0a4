import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ProcedureDefinition, UnaryOutbound, UnaryRequest, UnaryResponse } from "@omnirelay/core";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "@omnirelay/core/middleware";
import { UsageError } from "./config.js";

// JWT authentication of the mesh demo (`--auth-secret-file`). The shared secret is the mesh membership: every role
// that holds it mints its own short-lived HS256 token, and the dispatcher verifies them with core's
// PrincipalBindingMiddleware (HS256 pinned, `exp` required, issuer and audience checked, anonymous calls refused).

/** What a role needs besides its configuration: the shared secret, when authentication is on. */
export interface MeshAuth {
  readonly authSecret?: Uint8Array;
}

/** `iss` of every token the demo mints and accepts. */
export const TOKEN_ISSUER = "omnirelay-mesh-demo";
/** `aud` of every token the demo mints and accepts. */
export const TOKEN_AUDIENCE = "resourcelease-mesh-demo";
/** Lifetime of a minted token. */
export const TOKEN_TTL_MS = 10 * 60_000;
/** A token is replaced when less than this is left of it. */
const RENEW_BEFORE_MS = 60_000;
/** Principal allowed to change the control plane's toggles when auth is on. */
export const MESH_ADMIN = "mesh-admin";

/**
 * Reads the shared secret: the file's bytes without surrounding whitespace, at least 32 of them.
 * @throws UsageError when the file cannot be read or is too short.
 */
export function loadSharedSecret(path: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new UsageError(`--auth-secret-file: cannot read ${path}: ${(error as Error).message}`);
  }
  const secret = new TextEncoder().encode(text);
  if (secret.byteLength < 32) {
    throw new UsageError(
      "--auth-secret-file must hold at least 32 bytes, e.g. `head -c 48 /dev/urandom | base64 > mesh-secret`",
    );
  }
  return secret;
}

/** The dispatcher's (and control plane's) principal binding: HS256 tokens of this mesh only. */
export function bindingOptions(secret: Uint8Array): PrincipalBindingMiddlewareOptions {
  return {
    jwt: { key: secret, algorithms: ["HS256"], issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE },
    acceptClientCertificates: false,
  };
}

/** The dispatcher's middleware that refuses every call without a valid token. */
export function authMiddleware(secret: Uint8Array): PrincipalBindingMiddleware {
  return new PrincipalBindingMiddleware(bindingOptions(secret));
}

/** When a minted token starts and how long it lasts. */
export interface MintTokenOptions {
  /** @defaultValue `Date.now()` */
  readonly nowMs?: number;
  /** @defaultValue {@link TOKEN_TTL_MS} */
  readonly ttlMs?: number;
}

/** An HS256 JWT for `subject`, valid for `ttlMs` from `nowMs`. */
export function mintToken(secret: Uint8Array, subject: string, options: MintTokenOptions = {}): string {
  const { nowMs = Date.now(), ttlMs = TOKEN_TTL_MS } = options;
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const iat = Math.floor(nowMs / 1000);
  const claims = { sub: subject, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat, exp: iat + Math.ceil(ttlMs / 1000) };
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** Options of {@link TokenOutbound}. */
export interface TokenOutboundOptions {
  readonly inner: UnaryOutbound;
  readonly secret: Uint8Array;
  /** `sub` of the minted tokens. */
  readonly subject: string;
  /** @defaultValue `Date.now` */
  readonly now?: () => number;
}

/** Sends every call with `authorization: Bearer <token>`, minting a fresh token before the current one expires. */
export class TokenOutbound implements UnaryOutbound {
  private token = "";
  private expiresAt = 0;

  constructor(private readonly options: TokenOutboundOptions) {}

  call<Req, Res>(definition: ProcedureDefinition<Req, Res>, request: UnaryRequest<Req>): Promise<UnaryResponse<Res>> {
    const now = (this.options.now ?? Date.now)();
    if (now >= this.expiresAt - RENEW_BEFORE_MS) {
      this.token = mintToken(this.options.secret, this.options.subject, { nowMs: now });
      this.expiresAt = now + TOKEN_TTL_MS;
    }
    const headers = { ...request.meta.headers, authorization: `Bearer ${this.token}` };
    return this.options.inner.call(definition, { ...request, meta: { ...request.meta, headers } });
  }

  async close(): Promise<void> {
    await this.options.inner.close?.();
  }
}

/** Wraps `outbound` with {@link TokenOutbound} when a secret is configured. */
export function authenticated(outbound: UnaryOutbound, secret: Uint8Array | undefined, subject: string): UnaryOutbound {
  return secret === undefined ? outbound : new TokenOutbound({ inner: outbound, secret, subject });
}
