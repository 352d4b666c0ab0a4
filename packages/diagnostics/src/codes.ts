/**
 * Stable error codes of the diagnostics control plane. Clients match on these strings; never rename one.
 * The status each code travels with is listed beside it.
 */
export const DiagnosticsErrorCodes = {
  /** not-found: no control-plane route for the method and path (own port only); metadata `path`. */
  routeNotFound: "omnirelay.control.route_not_found",
  /** unimplemented (HTTP 405): the route exists but not for this method; metadata `method`. */
  methodNotAllowed: "omnirelay.control.method_not_allowed",
  /**
   * permission-denied (HTTP 403): a state-changing request came from a browser page of another origin (an `Origin`
   * that is neither the control plane's own nor in `allowedOrigins`, or `Sec-Fetch-Site: cross-site` / `same-site`
   * without an `Origin`); metadata `origin` or `secFetchSite`.
   */
  originForbidden: "omnirelay.control.origin_forbidden",
  /** invalid-argument (HTTP 415): a state-changing request whose `Content-Type` is not `application/json`; metadata `contentType`. */
  unsupportedMediaType: "omnirelay.control.unsupported_media_type",
  /** invalid-argument: the request body is missing, too large or not a JSON object. */
  bodyInvalid: "omnirelay.control.body_invalid",
  /** invalid-argument: `level` is not a known log level; metadata `field`. */
  logLevelInvalid: "omnirelay.control.logging.level_invalid",
  /** invalid-argument: `enabled` is not a boolean or `samplingProbability` is not in [0, 1]; metadata `field`. */
  tracingInvalid: "omnirelay.control.tracing.invalid",
  /** already-exists: a shard, sink or readiness check with that name is already registered; metadata `name`. */
  duplicate: "omnirelay.control.duplicate",
  /** internal: prom-client failed to collect the metrics text. */
  metricsFailed: "omnirelay.control.metrics_failed",
  /** unavailable: the control plane was closed. */
  closed: "omnirelay.control.closed",
} as const;

/** One of {@link DiagnosticsErrorCodes}. */
export type DiagnosticsErrorCode = (typeof DiagnosticsErrorCodes)[keyof typeof DiagnosticsErrorCodes];
