// Codes of the RPC layer and of what serves it (prefix `omnirelay.`), grouped as in ErrorCodes. Each entry's
// TSDoc follows the rules in codes.ts; only codes.ts assembles these, and only ErrorCodes is public.

/** The `ErrorCodes.rpc` group. */
export const rpcCodes = {
  /** invalid-argument: the body is not valid UTF-8 JSON; metadata `field`. */
  requestMalformedJson: "omnirelay.request.malformed_json",
  /** invalid-argument: the body is JSON but not an object; metadata `field`. */
  requestInvalidBody: "omnirelay.request.invalid_body",
  /** invalid-argument: no procedure was named (`Rpc-Procedure` header missing); metadata `header`. */
  requestProcedureRequired: "omnirelay.request.procedure_required",
  /**
   * invalid-argument (HTTP 413): the request body (HTTP) or request message (gRPC) exceeds the inbound's limit;
   * metadata `field`, `limit`.
   */
  requestTooLarge: "omnirelay.request.too_large",
  /** deadline-exceeded (HTTP 408): the client did not send the whole request in time; metadata `limitMs`. */
  requestTimeout: "omnirelay.request.timeout",
  /**
   * resource-exhausted: the HTTP inbound already holds `maxBufferedBodyBytes` of request bodies still arriving
   * (across every connection); the request is refused with `Retry-After: 1` without reading the rest of its body, and
   * its connection is closed; metadata `limit`, `retryAfterMs`.
   */
  requestBodyBudgetExhausted: "omnirelay.request.body_budget_exhausted",
  /** invalid-argument (HTTP 431): the request headers exceed the server's limit. */
  requestHeadersTooLarge: "omnirelay.request.headers_too_large",
  /** invalid-argument: the bytes sent are not a well-formed HTTP/1.1 request; metadata `reason` (Node's parser code). */
  requestMalformedHttp: "omnirelay.request.malformed_http",
  /** invalid-argument: an `Rpc-*` header (or its gRPC metadata twin) has a bad value; metadata `header`. */
  requestInvalidHeader: "omnirelay.request.invalid_header",
  /**
   * invalid-argument: the gRPC request message is not valid protobuf for its rpc, has a string that is not UTF-8,
   * or holds an int64 past 2^53 that JavaScript numbers cannot carry exactly (also from the replication hub);
   * metadata `rpc`.
   */
  requestMalformedProtobuf: "omnirelay.request.malformed_protobuf",
  /** unimplemented: no procedure with that name is registered; metadata `procedure`. */
  procedureNotFound: "omnirelay.procedure.not_found",
  /** already-exists: a procedure with that name is already registered; metadata `procedure`. */
  procedureDuplicate: "omnirelay.procedure.duplicate",
  /** not-found: an HTTP inbound has no route for the method and path (only `POST` calls, `/healthz`, `/readyz`). */
  routeNotFound: "omnirelay.route.not_found",
  /**
   * deadline-exceeded: the call's deadline passed; metadata `procedure` and `outcome` from the middleware: `not_run`
   * (it had passed when the call arrived: nothing happened) or `unknown` (it passed while the call ran: what the call
   * did may still take effect: an enqueue retried with the same `requestId` is not added twice).
   */
  deadlineExceeded: "omnirelay.deadline_exceeded",
  /** cancelled: the caller went away, or the middleware was closed while the call was in flight. */
  cancelled: "omnirelay.cancelled",
  /** unavailable: the inbound, the dispatcher or the middleware is shutting down and takes no new calls. */
  inboundShuttingDown: "omnirelay.inbound.shutting_down",
  /** unavailable: the inbound cannot bind its address (in use, bad host); metadata `address`. */
  inboundBindFailed: "omnirelay.inbound.bind_failed",
  /**
   * invalid-argument: a worker session frame is not valid (not JSON or protobuf of the frame, a bad field); the
   * session is closed; metadata `reason` (the code of the fault) and `field` when one field is at fault.
   */
  sessionFrameInvalid: "omnirelay.session.frame_invalid",
  /** resource-exhausted: a worker session frame is larger than the session allows; metadata `limit`. */
  sessionFrameTooLarge: "omnirelay.session.frame_too_large",
  /** resource-exhausted: a worker session granted more credit than the session allows; metadata `limit`. */
  sessionCreditExceeded: "omnirelay.session.credit_exceeded",
  /** deadline-exceeded: a worker session sent nothing for longer than its idle limit, or did not answer a ping before the next (metadata `reason: ping`); metadata `limitMs`. */
  sessionIdle: "omnirelay.session.idle",
  /** resource-exhausted: a worker session did not read what the dispatcher sent it (too much left unsent); metadata `limit`. */
  sessionSlow: "omnirelay.session.slow",
  /**
   * resource-exhausted: the inbound already holds as many live worker sessions as it allows, in all (metadata
   * `scope: inbound`, option `sessions.maxSessions`) or for this caller (`scope: caller`,
   * `sessions.maxSessionsPerCaller`); the session is refused at open; metadata `limit`, `scope`.
   */
  sessionTooMany: "omnirelay.session.too_many",
  /** unavailable: the worker session broke or was closed before the operation was answered (send it again). */
  sessionClosed: "omnirelay.session.closed",
  /** failed-precondition: `start()` on an inbound that is closing or closed. */
  inboundState: "omnirelay.inbound.state",
  /**
   * failed-precondition: a lifecycle step out of order — `start()` after `stop()`, or an inbound attached to a
   * dispatcher (or a member added to a `LifecycleGroup`) that has already started.
   */
  lifecycleState: "omnirelay.lifecycle.state",
  /** failed-precondition: `call()` on an outbound after `close()`. */
  outboundClosed: "omnirelay.outbound.closed",
  /** unavailable: the remote could not be reached. */
  transportUnavailable: "omnirelay.transport.unavailable",
  /**
   * failed-precondition: made by the CLI, never sent: `--transport grpc` needs `@omnirelay/transport-grpc`, an
   * optional peer of `@omnirelay/cli`, and it is not installed; the message says what to `npm install`.
   */
  transportGrpcNotInstalled: "omnirelay.transport.grpc_not_installed",
  /**
   * failed-precondition: made by the CLI, never sent: `omnirelay shards` needs `@omnirelay/replicator-jetstream`, an
   * optional peer of `@omnirelay/cli`, and it is not installed; the message says what to `npm install`.
   */
  cliJetstreamNotInstalled: "omnirelay.cli.jetstream_not_installed",
  /**
   * failed-precondition: made by the CLI, never sent: `omnirelay resourcelease rebuild` needs the package of the sink it
   * reads or writes (`@omnirelay/replicator-sqlite`, `-grpc`, `-object-storage`, or a cloud SDK), an optional peer of
   * `@omnirelay/cli`, and it is not installed; the message says what to `npm install`.
   */
  cliPackageNotInstalled: "omnirelay.cli.package_not_installed",
  /** internal: the remote answered something that is not the procedure's response message; metadata `field`. */
  responseInvalid: "omnirelay.response.invalid",
  /**
   * resource-exhausted: made by the client, never sent: the remote's answer is larger than the outbound takes
   * (`HttpOutbound`'s `maxResponseBytes`, by `Content-Length` or as it arrived); the request is abandoned and its
   * connection closed; metadata `limit`.
   */
  responseTooLarge: "omnirelay.response.too_large",
  /** resource-exhausted: the rate limiter refused a permit; metadata `procedure`, `retryAfterMs`, `limiter`. */
  rateLimited: "omnirelay.rate_limited",
  /**
   * internal: the handler failed with something that is not an `OmniRelayError` (a bug: the message is generic,
   * the details are in the server log); also the code `OmniRelayError.from` gives anything it does not know.
   */
  internal: "omnirelay.internal",
  /** unknown: an error arrived without a code (`OmniRelayError.fromWire`, a batch result that names none). */
  unknown: "omnirelay.unknown",
} as const;

/** The `ErrorCodes.auth` group. */
export const authCodes = {
  /**
   * unauthenticated: the call carries no principal (nor verified client certificate) and needs one; metadata
   * `procedure` (RPC), `rpc` (replication hub) or `path` (control plane).
   */
  required: "omnirelay.auth.required",
  /**
   * unauthenticated: a bearer token is present but is not a valid JWT for the configured keys; metadata `reason`. Also
   * ends a worker session when the token it was opened with expires.
   */
  invalidToken: "omnirelay.auth.invalid_token",
  /** unavailable: the keys needed to verify a JWT could not be obtained (remote JWKS unreachable). */
  keysUnavailable: "omnirelay.auth.keys_unavailable",
  /**
   * permission-denied: no authorization rule allows the principal to call the procedure; metadata `procedure` (RPC)
   * or `path` (control plane).
   */
  forbidden: "omnirelay.auth.forbidden",
} as const;

/** The `ErrorCodes.grpc` group. */
export const grpcCodes = {
  /** unimplemented: the outbound cannot carry this procedure (not a ResourceLease verb); metadata `procedure`. */
  procedureUnsupported: "omnirelay.grpc.procedure_unsupported",
  /** internal: a procedure answered JSON that the rpc's response message cannot carry; metadata `field`. */
  responseInvalid: "omnirelay.grpc.response_invalid",
  /** any: the remote failed without OmniRelay error trailers (not an OmniRelay server); the status is the one it sent. */
  remoteFailed: "omnirelay.grpc.remote_failed",
} as const;

/** The `ErrorCodes.controlPlane` group. */
export const controlPlaneCodes = {
  /** not-found: no control-plane route for the method and path (own port only); metadata `path`. */
  routeNotFound: "omnirelay.control.route_not_found",
  /** unimplemented (HTTP 405): the route exists but not for this method; metadata `method`. */
  methodNotAllowed: "omnirelay.control.method_not_allowed",
  /**
   * permission-denied: a state-changing request came from a browser page of another origin (an `Origin` that is
   * neither the control plane's own nor in `allowedOrigins`, or `Sec-Fetch-Site: cross-site` / `same-site` without
   * an `Origin`); metadata `origin` or `secFetchSite`.
   */
  originForbidden: "omnirelay.control.origin_forbidden",
  /** invalid-argument (HTTP 415): a state-changing request whose `Content-Type` is not `application/json`; metadata `contentType`. */
  unsupportedMediaType: "omnirelay.control.unsupported_media_type",
  /** invalid-argument: the request body is missing, too large or not a JSON object. */
  bodyInvalid: "omnirelay.control.body_invalid",
  /** invalid-argument: `level` is not a known log level; metadata `field`. */
  loggingLevelInvalid: "omnirelay.control.logging.level_invalid",
  /** invalid-argument: `enabled` is not a boolean or `samplingProbability` is not in [0, 1]; metadata `field`. */
  tracingInvalid: "omnirelay.control.tracing.invalid",
  /** already-exists: a shard, sink or readiness check with that name is already registered; metadata `name`. */
  duplicate: "omnirelay.control.duplicate",
  /** internal: collecting the metrics text (prom-client) failed. */
  metricsFailed: "omnirelay.control.metrics_failed",
  /** unavailable: the control plane was closed. */
  closed: "omnirelay.control.closed",
  /**
   * unknown: made by the CLI, never sent: a control-plane endpoint answered HTTP `<status>` without an OmniRelay
   * error body (a proxy in between); e.g. `omnirelay.control.http_502`.
   */
  httpPrefix: "omnirelay.control.http_",
} as const;
