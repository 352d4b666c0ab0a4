import type { IncomingMessage } from "node:http";
import { ErrorCodes, OmniRelayError, type RequestMeta } from "@omnirelay/core";
import {
  AuthorizationPolicy,
  PrincipalBindingMiddleware,
  type PrincipalBindingMiddlewareOptions,
} from "@omnirelay/core/middleware";
import { lowerHeaders, transportSecurity } from "./http.js";

/** Authentication and authorization of the control plane. */
export interface ControlPlaneAuthOptions {
  /**
   * How principals are established: the same options as the RPC surface's `PrincipalBindingMiddleware`
   * (verified client certificate, verified JWT, trusted-proxy headers). The read endpoints (GET) need a principal
   * too unless `requireAuthentication` is `false`; `allowAnonymous` is not used here (see `publicPaths`).
   */
  readonly principalBinding: PrincipalBindingMiddlewareOptions;
  /** Principals allowed to call mutating endpoints (POST). @defaultValue `[]` (nobody) */
  readonly admins?: readonly string[];
  /** Paths served without any check (probes, scrapes). @defaultValue `['/healthz', '/readyz', '/metrics']` */
  readonly publicPaths?: readonly string[];
}

/** Pseudo-procedures the policy is written in. */
const READ = "omnirelay.control::read";
const WRITE = "omnirelay.control::write";

/** The service name control-plane calls carry in their synthetic `RequestMeta`. */
export const CONTROL_PLANE_SERVICE = "omnirelay.control";

/** Runs PrincipalBindingMiddleware and an AuthorizationPolicy over a plain HTTP request. */
export class ControlPlaneAuthenticator {
  private readonly binding: PrincipalBindingMiddleware;
  private readonly policy: AuthorizationPolicy;
  private readonly publicPaths: ReadonlySet<string>;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for bad binding options or admins. */
  constructor(options: ControlPlaneAuthOptions) {
    if (typeof options?.principalBinding !== "object" || options.principalBinding === null) {
      throw OmniRelayError.invalidOption("auth.principalBinding", "Option 'auth.principalBinding' is required.");
    }
    const admins = options.admins ?? [];
    if (!Array.isArray(admins) || admins.some((a) => typeof a !== "string" || a.trim() === "" || a === "*")) {
      throw OmniRelayError.invalidOption(
        "auth.admins",
        "Option 'auth.admins' must list explicit, non-blank principals.",
      );
    }
    // The binding only establishes who is calling; the policy below decides, per path and method.
    this.binding = new PrincipalBindingMiddleware({ ...options.principalBinding, requireAuthentication: false });
    const reads = options.principalBinding.requireAuthentication !== false;
    this.policy = new AuthorizationPolicy({
      rules: [
        { principals: ["*"], procedures: [READ] },
        ...(admins.length > 0 ? [{ principals: [...admins], procedures: [READ, WRITE] }] : []),
      ],
      allowAnonymous: reads ? [] : [READ],
    });
    this.publicPaths = new Set(options.publicPaths ?? ["/healthz", "/readyz", "/metrics"]);
  }

  /**
   * Establishes the caller's principal and checks it may use `method` on `path`.
   * @returns the principal, when there is one.
   * @throws OmniRelayError unauthenticated `omnirelay.auth.required` / `omnirelay.auth.invalid_token`,
   * permission-denied `omnirelay.auth.forbidden`, unavailable `omnirelay.auth.keys_unavailable`.
   */
  async authorize(req: IncomingMessage, path: string, signal: AbortSignal): Promise<string | undefined> {
    if (this.publicPaths.has(path)) return undefined;
    const write = req.method !== "GET" && req.method !== "HEAD";
    const procedure = write ? WRITE : READ;
    const meta: RequestMeta = {
      service: CONTROL_PLANE_SERVICE,
      procedure,
      transport: "http",
      headers: lowerHeaders(req),
      security: transportSecurity(req),
      signal,
    };
    let principal: string | undefined;
    await this.binding.handle({ meta, message: {} }, async (request) => {
      principal = request.meta.principal;
      return { message: {} };
    });
    const decision = this.policy.decide(principal, procedure);
    if (decision === "unauthenticated") {
      throw new OmniRelayError({
        status: "unauthenticated",
        code: ErrorCodes.auth.required,
        message: "Authentication is required.",
        metadata: { path },
      });
    }
    if (decision === "forbidden") {
      throw new OmniRelayError({
        status: "permission-denied",
        code: ErrorCodes.auth.forbidden,
        message: write ? "Only control-plane admins may change settings." : "The principal may not read diagnostics.",
        metadata: { path },
      });
    }
    return principal;
  }
}
