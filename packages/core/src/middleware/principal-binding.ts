import { trace } from "@opentelemetry/api";
import { type JWTVerifyGetKey, type JWTVerifyOptions, errors as joseErrors, jwtVerify, type KeyInput } from "jose";
import { type Logger, silentLogger } from "../contracts/health.js";
import type {
  RequestMeta,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { wellFormed } from "../wire/values.js";
import { canonicalIpAddress } from "./ip-address.js";
import { optionalStrings } from "./options.js";
import { buildVerifyOptions, resolveJwtKey } from "./principal-binding-jwt.js";
import { compileProcedureGlobs, type ProcedureMatcher } from "./procedure-glob.js";

/**
 * How {@link PrincipalBindingMiddleware} verifies `authorization: Bearer <jwt>`. Give exactly one of `key`, `jwks`.
 * The accepted algorithms always follow from the key's type (an RSA key never verifies an HS256 token), and every
 * token must carry `exp`.
 */
export interface JwtVerificationOptions {
  /**
   * The verification key. A public key — `KeyObject`, `CryptoKey`, JWK, or PEM / DER (bytes or PEM text) of a public
   * key, private key or certificate — verifies RS256/384/512 and PS256/384/512 (RSA, at least 2048 bits), the curve's
   * ES256/384/512 (EC P-256/384/521) or EdDSA / Ed25519 (Ed25519). Bytes that hold no key, a secret `KeyObject` or an
   * `oct` JWK are a shared secret of at least 32 bytes and verify HS256/384/512. A PEM is never used as a secret.
   */
  readonly key?: KeyInput | string;
  /** A key set resolver: `createLocalJWKSet(jwks)` or `createRemoteJWKSet(url)` from `jose`. Verifies RS*, PS*, ES*, EdDSA, never HS*. */
  readonly jwks?: JWTVerifyGetKey;
  /** Required `iss` value(s). @defaultValue `undefined` (not checked) */
  readonly issuer?: string | readonly string[];
  /** Required `aud` value(s). @defaultValue `undefined` (not checked) */
  readonly audience?: string | readonly string[];
  /**
   * Narrows the accepted `alg` values; each must be one the key's type can verify (checked at construction).
   * @defaultValue every algorithm of the key's type (see `key`)
   */
  readonly algorithms?: readonly string[];
  /** Claim that holds the principal; must be a non-blank string. @defaultValue `'sub'` */
  readonly principalClaim?: string;
  /** Clock skew allowed when checking `exp` and `nbf`, in ms, at most 300000. @defaultValue `5000` */
  readonly clockToleranceMs?: number;
}

/** Options of {@link PrincipalBindingMiddleware}. */
export interface PrincipalBindingMiddlewareOptions {
  /** Use the subject of a client certificate that the TLS handshake verified. @defaultValue `true` */
  readonly acceptClientCertificates?: boolean;
  /** Verify bearer JWTs; without it a bearer token is ignored (never a principal). @defaultValue `undefined` */
  readonly jwt?: JwtVerificationOptions;
  /** Exact IP addresses whose principal headers are believed (IPv4-mapped IPv6 equals its IPv4). @defaultValue `[]` */
  readonly trustedProxies?: readonly string[];
  /** Headers a trusted proxy puts the principal in, first non-blank wins. @defaultValue `['x-client-principal', 'x-mtls-subject', 'rpc-principal']` */
  readonly principalHeaders?: readonly string[];
  /**
   * Refuse calls that end up with no principal (unauthenticated `omnirelay.auth.required`), except procedures listed
   * in `allowAnonymous`. `false` only binds a principal when there is one and lets anonymous calls through: use it
   * only when something after this middleware (an `AuthorizationMiddleware`, the handler) decides.
   * @defaultValue `true`
   */
  readonly requireAuthentication?: boolean;
  /**
   * Procedure patterns (case-insensitive, `*` wildcard, as in `AuthorizationRule`) that callers without a principal
   * may still call, e.g. `['resourcelease::stats']`. A bearer token that fails verification is refused even here.
   * @defaultValue `[]`
   */
  readonly allowAnonymous?: readonly string[];
  /** Receives key-lookup failures (never a token). @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

const defaultPrincipalHeaders = ["x-client-principal", "x-mtls-subject", "rpc-principal"] as const;

/** Short, token-free reasons for a rejected JWT, keyed by jose error code. */
const rejectionReasons: Readonly<Record<string, string>> = {
  ERR_JWT_EXPIRED: "expired",
  ERR_JWT_CLAIM_VALIDATION_FAILED: "claim_invalid",
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: "signature_invalid",
  ERR_JOSE_ALG_NOT_ALLOWED: "algorithm_not_allowed",
  ERR_JOSE_NOT_SUPPORTED: "algorithm_not_supported",
  ERR_JWKS_NO_MATCHING_KEY: "no_matching_key",
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: "ambiguous_key",
  ERR_JWS_INVALID: "malformed",
  ERR_JWT_INVALID: "malformed",
};

/** Thrown by the wrapped key resolver when keys could not be fetched, as opposed to a bad token. */
class KeyLookupFailure extends Error {}

/**
 * Binds the authenticated principal to each call, from (in this order) a verified client certificate, a verified
 * JWT bearer token, or a principal header sent by a trusted proxy. A raw bearer string never becomes a principal,
 * and principal headers from any other address are ignored and removed before the call goes on. `meta.principal`
 * is always replaced, so nothing upstream can smuggle one in. Calls that end up without a principal are refused
 * unless their procedure is in `allowAnonymous` or `requireAuthentication` is `false`.
 */
export class PrincipalBindingMiddleware implements UnaryInboundMiddleware {
  private readonly acceptClientCertificates: boolean;
  private readonly requireAuthentication: boolean;
  private readonly anonymous: ProcedureMatcher;
  private readonly principalHeaders: readonly string[];
  private readonly trustedProxies: ReadonlySet<string>;
  private readonly jwtKey: KeyInput | JWTVerifyGetKey | undefined;
  private readonly jwtOptions: JWTVerifyOptions;
  private readonly principalClaim: string;
  private readonly logger: Logger;

  /**
   * Creates the middleware.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a trusted proxy
   * that is not an IP address, blank header names, a `jwt` block without exactly one of `key` / `jwks`, a key that is
   * neither a supported public key nor a shared secret of at least 32 bytes, `jwt.algorithms` the key cannot verify,
   * or `requireAuthentication` with no way left to authenticate (certificates off, no `jwt`, no `trustedProxies`).
   */
  constructor(options: PrincipalBindingMiddlewareOptions = {}) {
    this.acceptClientCertificates = options.acceptClientCertificates ?? true;
    if (options.requireAuthentication !== undefined && typeof options.requireAuthentication !== "boolean") {
      throw OmniRelayError.invalidOption("requireAuthentication", "Option 'requireAuthentication' must be a boolean.");
    }
    this.requireAuthentication = options.requireAuthentication ?? true;
    this.anonymous = compileProcedureGlobs(optionalStrings("allowAnonymous", options.allowAnonymous) ?? []);
    this.logger = options.logger ?? silentLogger;
    this.principalHeaders = (
      optionalStrings("principalHeaders", options.principalHeaders) ?? [...defaultPrincipalHeaders]
    ).map((h) => h.toLowerCase());
    const proxies = new Set<string>();
    for (const proxy of optionalStrings("trustedProxies", options.trustedProxies) ?? []) {
      const ip = canonicalIpAddress(proxy);
      if (ip === undefined) throw OmniRelayError.invalidOption("trustedProxies", `'${proxy}' is not an IP address.`);
      proxies.add(ip);
    }
    this.trustedProxies = proxies;
    const jwt = options.jwt;
    this.principalClaim = "sub";
    this.jwtOptions = {};
    if (jwt !== undefined) {
      if (typeof jwt !== "object" || jwt === null)
        throw OmniRelayError.invalidOption("jwt", "Option 'jwt' must be an object.");
      const resolved = resolveJwtKey(jwt);
      this.jwtKey = typeof resolved.key === "function" ? wrapKeySet(resolved.key) : resolved.key;
      this.principalClaim = jwt.principalClaim?.trim() || "sub";
      this.jwtOptions = buildVerifyOptions(jwt, resolved.algorithms);
    }
    if (this.requireAuthentication && !this.acceptClientCertificates && jwt === undefined && proxies.size === 0) {
      throw OmniRelayError.invalidOption(
        "requireAuthentication",
        "No caller could ever authenticate: enable 'acceptClientCertificates', 'jwt' or 'trustedProxies', " +
          "or set 'requireAuthentication: false'.",
      );
    }
  }

  /**
   * Binds the principal and calls `next` with a new meta.
   * @throws OmniRelayError unauthenticated `omnirelay.auth.invalid_token` for a bearer token that fails verification,
   * unauthenticated `omnirelay.auth.required` when no principal was found and the procedure is not in
   * `allowAnonymous` (unless `requireAuthentication` is `false`),
   * unavailable `omnirelay.auth.keys_unavailable` when a remote key set cannot be fetched.
   */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const meta = request.meta;
    const fromTrustedProxy = this.isTrustedProxy(meta.security?.remoteAddress);
    const certificate = this.certificatePrincipal(meta);
    const token = certificate === undefined ? await this.tokenPrincipal(meta) : undefined;
    const principal = certificate ?? token?.principal ?? (fromTrustedProxy ? this.headerPrincipal(meta) : undefined);
    if (principal === undefined && this.requireAuthentication && !this.anonymous(meta.procedure)) {
      throw new OmniRelayError({
        status: "unauthenticated",
        code: ErrorCodes.auth.required,
        message: "Authentication is required.",
        metadata: {
          procedure: meta.procedure,
        },
      });
    }
    if (principal !== undefined) trace.getActiveSpan()?.setAttribute("rpc.principal", principal);
    const { principal: _untrusted, credentialExpiresAt: _unverified, ...rest } = meta;
    const headers = fromTrustedProxy ? meta.headers : this.withoutPrincipalHeaders(meta.headers);
    let bound: RequestMeta = principal === undefined ? { ...rest, headers } : { ...rest, headers, principal };
    if (token !== undefined) bound = { ...bound, credentialExpiresAt: token.expiresAt };
    return next({ ...request, meta: bound });
  }

  private certificatePrincipal(meta: RequestMeta): string | undefined {
    const security = meta.security;
    if (!this.acceptClientCertificates || security?.clientCertificateVerified !== true) return undefined;
    return nonBlank(security.clientCertificateSubject);
  }

  /** The principal of a verified bearer token, and when the token stops being valid (its `exp` plus the tolerance). */
  private async tokenPrincipal(meta: RequestMeta): Promise<{ principal: string; expiresAt: number } | undefined> {
    if (this.jwtKey === undefined) return undefined;
    const token = bearerToken(meta.headers.authorization);
    if (token === undefined) return undefined;
    let payload: Record<string, unknown>;
    try {
      // The overloads differ only in the key type; both forms are accepted at runtime.
      ({ payload } = await jwtVerify(token, this.jwtKey as KeyInput, this.jwtOptions));
    } catch (error) {
      throw this.rejection(error);
    }
    const principal = payload[this.principalClaim];
    const value = typeof principal === "string" ? nonBlank(principal) : undefined;
    if (value === undefined) {
      throw invalidToken("principal_claim_missing", `The token has no '${this.principalClaim}' claim.`);
    }
    // A lone surrogate (a JSON escape in the claim) would be stored as U+FFFD by every log: a principal no copy keeps.
    if (!wellFormed(value)) {
      throw invalidToken(
        "principal_claim_invalid",
        `The token's '${this.principalClaim}' claim is not well-formed Unicode.`,
      );
    }
    // `exp` is required and checked by jwtVerify (seconds), as is the tolerance buildVerifyOptions sets (seconds).
    const expiresAt = ((payload.exp as number) + Number(this.jwtOptions.clockTolerance ?? 0)) * 1000;
    return { principal: value, expiresAt };
  }

  private rejection(error: unknown): OmniRelayError {
    if (error instanceof KeyLookupFailure) {
      this.logger.warn({ err: error.cause }, "Could not fetch the keys to verify a bearer token.");
      return new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.auth.keysUnavailable,
        message: "The token keys are unavailable.",
      });
    }
    const code = error instanceof joseErrors.JOSEError ? error.code : "";
    const reason = rejectionReasons[code] ?? "invalid";
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      // jose says `missing` for a required claim that is absent (e.g. a token without `exp`).
      const missing = error.reason === "missing";
      return invalidToken(missing ? "claim_missing" : reason, "The bearer token is not valid.", error.claim);
    }
    return invalidToken(reason, "The bearer token is not valid.");
  }

  private headerPrincipal(meta: RequestMeta): string | undefined {
    for (const name of this.principalHeaders) {
      const value = nonBlank(meta.headers[name]);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  private withoutPrincipalHeaders(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    if (!this.principalHeaders.some((h) => Object.hasOwn(headers, h))) return headers;
    const copy: Record<string, string> = { ...headers };
    for (const name of this.principalHeaders) delete copy[name];
    return copy;
  }

  private isTrustedProxy(remoteAddress: string | undefined): boolean {
    if (remoteAddress === undefined || this.trustedProxies.size === 0) return false;
    const ip = canonicalIpAddress(remoteAddress);
    return ip !== undefined && this.trustedProxies.has(ip);
  }
}

function invalidToken(reason: string, message: string, claim?: string): OmniRelayError {
  return new OmniRelayError({
    status: "unauthenticated",
    code: ErrorCodes.auth.invalidToken,
    message,
    metadata: claim ? { reason, claim } : { reason },
  });
}

function nonBlank(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/** The token of `Bearer <token>` (scheme case-insensitive); `''` for a bearer header with no token. */
function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const value = authorization.trim();
  const space = value.indexOf(" ");
  const scheme = space < 0 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== "bearer") return undefined;
  return space < 0 ? "" : value.slice(space + 1).trim();
}

/** Marks failures to obtain keys (network, timeout, bad key set document) so they are not blamed on the token. */
function wrapKeySet(jwks: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (error) {
      const tokenProblem =
        error instanceof joseErrors.JWKSNoMatchingKey ||
        error instanceof joseErrors.JWKSMultipleMatchingKeys ||
        error instanceof joseErrors.JOSENotSupported ||
        error instanceof joseErrors.JOSEAlgNotAllowed;
      if (tokenProblem) throw error;
      throw new KeyLookupFailure("key lookup failed", { cause: error });
    }
  };
}
