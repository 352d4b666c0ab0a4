import type { UnaryHandler, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { optionalStrings } from "./options.js";
import { compileProcedureGlobs, type ProcedureMatcher } from "./procedure-glob.js";

/** One grant: these principals may call these procedures. */
export interface AuthorizationRule {
  /** Exact principals (case-sensitive), or `'*'` for any authenticated principal. */
  readonly principals: readonly string[];
  /** Case-insensitive procedure patterns; `*` is a wildcard (`resourcelease::*`, `*::lease`, `*`). */
  readonly procedures: readonly string[];
}

/** Options of {@link AuthorizationPolicy} and {@link AuthorizationMiddleware}. */
export interface AuthorizationOptions {
  /** The grants. A call is allowed only when one rule matches both its principal and its procedure. */
  readonly rules: readonly AuthorizationRule[];
  /**
   * Procedure patterns anyone may call, with or without a principal. `PrincipalBindingMiddleware` in front refuses
   * principal-less calls first, so list the same patterns in its `allowAnonymous` too.
   * @defaultValue `[]`
   */
  readonly allowAnonymous?: readonly string[];
}

/** The outcome of {@link AuthorizationPolicy.decide}. */
export type AuthorizationDecision = "allowed" | "unauthenticated" | "forbidden";

interface CompiledRule {
  readonly anyPrincipal: boolean;
  readonly principals: ReadonlySet<string>;
  readonly procedures: ProcedureMatcher;
}

/** A default-deny map from principals to the procedures they may call (usable outside middleware, e.g. admin checks). */
export class AuthorizationPolicy {
  private readonly rules: readonly CompiledRule[];
  private readonly anonymous: ProcedureMatcher;

  /**
   * Compiles the rules.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) when `rules` is not an
   * array or a rule has no principals, no procedures, or blank entries.
   */
  constructor(options: AuthorizationOptions) {
    if (!Array.isArray(options?.rules)) throw OmniRelayError.invalidOption("rules", "Option 'rules' must be an array.");
    this.rules = options.rules.map((rule: AuthorizationRule, index: number) => {
      const principals = optionalStrings(`rules[${index}].principals`, rule?.principals);
      const procedures = optionalStrings(`rules[${index}].procedures`, rule?.procedures);
      if (!principals?.length)
        throw OmniRelayError.invalidOption(`rules[${index}].principals`, "A rule needs at least one principal.");
      if (!procedures?.length)
        throw OmniRelayError.invalidOption(`rules[${index}].procedures`, "A rule needs at least one procedure.");
      return {
        anyPrincipal: principals.includes("*"),
        principals: new Set(principals),
        procedures: compileProcedureGlobs(procedures),
      };
    });
    this.anonymous = compileProcedureGlobs(optionalStrings("allowAnonymous", options.allowAnonymous) ?? []);
  }

  /** Decides a call: anonymous-allowed procedures are open to all; otherwise a principal and a matching rule are needed. */
  decide(principal: string | undefined, procedure: string): AuthorizationDecision {
    if (this.anonymous(procedure)) return "allowed";
    if (principal === undefined || principal.length === 0) return "unauthenticated";
    const granted = this.rules.some(
      (rule) => (rule.anyPrincipal || rule.principals.has(principal)) && rule.procedures(procedure),
    );
    return granted ? "allowed" : "forbidden";
  }

  /** Whether {@link decide} allows the call. */
  isAllowed(principal: string | undefined, procedure: string): boolean {
    return this.decide(principal, procedure) === "allowed";
  }
}

/**
 * Refuses every call that {@link AuthorizationPolicy} does not allow for `meta.principal`. Place it after
 * `PrincipalBindingMiddleware`, which is the only thing that sets the principal.
 */
export class AuthorizationMiddleware implements UnaryInboundMiddleware {
  /** The compiled policy, shared with anything else that needs the same decisions. */
  readonly policy: AuthorizationPolicy;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for invalid rules (see {@link AuthorizationPolicy}). */
  constructor(options: AuthorizationOptions) {
    this.policy = new AuthorizationPolicy(options);
  }

  /**
   * Calls `next` when the policy allows the call.
   * @throws OmniRelayError unauthenticated `omnirelay.auth.required` without a principal (and not anonymous-allowed),
   * permission-denied `omnirelay.auth.forbidden` when no rule grants the principal the procedure.
   */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const { principal, procedure } = request.meta;
    const decision = this.policy.decide(principal, procedure);
    if (decision === "unauthenticated") {
      throw new OmniRelayError({
        status: "unauthenticated",
        code: ErrorCodes.auth.required,
        message: "Authentication is required.",
        metadata: {
          procedure,
        },
      });
    }
    if (decision === "forbidden") {
      throw new OmniRelayError({
        status: "permission-denied",
        code: ErrorCodes.auth.forbidden,
        message: `The caller is not allowed to call procedure '${procedure}'.`,
        metadata: { procedure },
      });
    }
    return next(request);
  }
}
