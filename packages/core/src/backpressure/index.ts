/**
 * `@omnirelay/core/backpressure`: the lease queue's watermark gate, small rate limiters (concurrency, token bucket,
 * backpressure-aware) and backpressure listeners.
 * @packageDocumentation
 */
export type { ResourceLeaseBackpressureListener, ResourceLeaseBackpressureSignal } from "../contracts/health.js";
export type {
  BackpressureAwareRateLimiterOptions,
  RateLimiterSelector,
} from "./backpressure-aware-rate-limiter.js";
export { BackpressureAwareRateLimiter } from "./backpressure-aware-rate-limiter.js";
export type { ResourceLeaseBackpressureControllerOptions, WaitUntilInactiveOptions } from "./controller.js";
export { ResourceLeaseBackpressureController } from "./controller.js";
export type {
  BackpressureUpdatesOptions,
  ResourceLeaseBackpressureDiagnosticsListenerOptions,
} from "./diagnostics-listener.js";
export { ResourceLeaseBackpressureDiagnosticsListener } from "./diagnostics-listener.js";
export type {
  ConcurrencyLimiterOptions,
  RateLimiter,
  RateLimitPermit,
  TokenBucketLimiterOptions,
} from "./rate-limiters.js";
export { ConcurrencyLimiter, TokenBucketLimiter } from "./rate-limiters.js";
export type { RateLimitingBackpressureListenerOptions } from "./rate-limiting-listener.js";
export { RateLimitingBackpressureListener } from "./rate-limiting-listener.js";
