import { DispatcherErrorCodes } from "../dispatcher/json-codec.js";

/**
 * Stable error codes raised by the inbound middleware. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const MiddlewareErrorCodes = {
  /** unauthenticated: the call carries no principal and the procedure needs one; metadata `procedure`. */
  authenticationRequired: "omnirelay.auth.required",
  /** unauthenticated: a bearer token is present but is not a valid JWT for the configured keys; metadata `reason`. */
  invalidToken: "omnirelay.auth.invalid_token",
  /** unavailable: the keys needed to verify a JWT could not be obtained (remote JWKS unreachable). */
  keysUnavailable: "omnirelay.auth.keys_unavailable",
  /** permission-denied: no authorization rule allows the principal to call the procedure; metadata `procedure`. */
  forbidden: "omnirelay.auth.forbidden",
  /** resource-exhausted: the rate limiter refused a permit; metadata `procedure`, `retryAfterMs`, `limiter`. */
  rateLimited: "omnirelay.rate_limited",
  /** deadline-exceeded: the call's deadline passed before it finished; metadata `procedure`. */
  deadlineExceeded: DispatcherErrorCodes.deadlineExceeded,
  /** cancelled: the middleware was closed while the call was in flight. */
  cancelled: DispatcherErrorCodes.cancelled,
  /** unavailable: the middleware was closed and accepts no new calls. */
  shuttingDown: DispatcherErrorCodes.shuttingDown,
} as const;
