/**
 * `@omnirelay/core/middleware` — inbound middleware: principal binding (mTLS / JWT / trusted proxy), authorization, rate limits, tracing and
 * metrics, plus the deadline rules and headers the dispatcher enforces before any of them (its `deadlines` option; a
 * `DeadlineMiddleware` is not added to a dispatcher's chain). Suggested order, outermost first: tracing, metrics,
 * rate limiting, principal binding, authorization (a permit is then held until the handler really settles, and
 * floods are shed before any JWT is verified). In that order the long-poll share kept for authenticated callers sees
 * verified client certificates only; put rate limiting after principal binding for JWT principals to count too.
 * @packageDocumentation
 */

export type { WithCallAbort } from "../util/signals.js";
export { callAbort } from "../util/signals.js";
export type { AuthorizationDecision, AuthorizationOptions, AuthorizationRule } from "./authorization.js";
export { AuthorizationMiddleware, AuthorizationPolicy } from "./authorization.js";
export type { DeadlineMiddlewareOptions } from "./deadline.js";
export { DeadlineMiddleware } from "./deadline.js";
export type { RequestDeadlineOptions } from "./deadline-headers.js";
export { maxDeadlineHorizonMs, parseRfc3339DateTime, readRequestDeadline } from "./deadline-headers.js";
export { canonicalIpAddress } from "./ip-address.js";
export type {
  OtelRpcMetricsRecorderOptions,
  RpcCallMetric,
  RpcMetricsMiddlewareOptions,
  RpcMetricsRecorder,
} from "./metrics.js";
export { createOtelRpcMetricsRecorder, RpcMetricsMiddleware } from "./metrics.js";
export type { JwtVerificationOptions, PrincipalBindingMiddlewareOptions } from "./principal-binding.js";
export { PrincipalBindingMiddleware } from "./principal-binding.js";
export type { ProcedureMatcher, ProcedureParts } from "./procedure-glob.js";
export { compileProcedureGlob, compileProcedureGlobs, matchesProcedureGlob, splitProcedure } from "./procedure-glob.js";
export type {
  RateLimitingMiddlewareOptions,
  RequestLimiterSelector,
  RequestLimiterSource,
} from "./rate-limiting.js";
export { isLeaseLongPoll, RateLimitingMiddleware } from "./rate-limiting.js";
export { formatTraceparent, parseTraceparent } from "./trace-context.js";
export type { RpcTracingMiddlewareOptions } from "./tracing.js";
export { RpcTracingMiddleware, rpcInstrumentationName } from "./tracing.js";
