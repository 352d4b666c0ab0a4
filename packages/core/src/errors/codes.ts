/**
 * Every error code of OmniRelay, in one catalog with one group per area. Clients match on these strings; never
 * rename one. A code is only a string, so codes thrown only by an adapter package (SQLite, object storage, the
 * replication hub, the gRPC transport, the control plane) are listed here too, and adapters import them from here.
 *
 * One rule names every entry, so a code leads to its key and back: a group holds the codes that start with its
 * prefix (the longest prefix that matches wins), and the key is the rest of the code in camelCase, dots and
 * underscores dropped: `resourcelease.lease.unknown_token` is `ErrorCodes.resourceLease.leaseUnknownToken`,
 * `omnirelay.request.too_large` is `ErrorCodes.rpc.requestTooLarge`. A value ending in `_` is the prefix of a family
 * of codes; its key ends in `Prefix`.
 *
 * Each entry's TSDoc starts with the status the code travels with (`status: meaning`), then says what it means and
 * which metadata it carries. `(HTTP n)` marks an HTTP status other than the status table's; `any` is the status a
 * remote sent; `none` marks a code that is never thrown, only stored as an item's `lastError.code`. docs/protocol.md
 * lists every entry in one table, checked against this file by `packages/core/test/error-codes.test.ts`
 * (`UPDATE_DOCS=1` rewrites the table).
 */
export const ErrorCodes = {
  /** The RPC layer: dispatcher, HTTP and gRPC inbounds and outbounds, middleware. Prefix `omnirelay.`. */
  rpc: {
    /** invalid-argument: the body is not valid UTF-8 JSON; metadata `field`. */
    requestMalformedJson: "omnirelay.request.malformed_json",
    /** invalid-argument: the body is JSON but not an object; metadata `field`. */
    requestInvalidBody: "omnirelay.request.invalid_body",
    /** invalid-argument: no procedure was named (`Rpc-Procedure` header missing); metadata `header`. */
    requestProcedureRequired: "omnirelay.request.procedure_required",
    /** invalid-argument (HTTP 413): the request body exceeds the inbound's limit; metadata `field`, `limit`. */
    requestTooLarge: "omnirelay.request.too_large",
    /** deadline-exceeded (HTTP 408): the client did not send the whole request in time; metadata `limitMs`. */
    requestTimeout: "omnirelay.request.timeout",
    /** invalid-argument (HTTP 431): the request headers exceed the server's limit. */
    requestHeadersTooLarge: "omnirelay.request.headers_too_large",
    /** invalid-argument: the bytes sent are not a well-formed HTTP/1.1 request; metadata `reason` (Node's parser code). */
    requestMalformedHttp: "omnirelay.request.malformed_http",
    /** invalid-argument: an `Rpc-*` header (or its gRPC metadata twin) has a bad value; metadata `header`. */
    requestInvalidHeader: "omnirelay.request.invalid_header",
    /**
     * invalid-argument: the gRPC request message is not valid protobuf for its rpc, or holds an int64 past 2^53
     * that JavaScript numbers cannot carry exactly; metadata `rpc`.
     */
    requestMalformedProtobuf: "omnirelay.request.malformed_protobuf",
    /** unimplemented: no procedure with that name is registered; metadata `procedure`. */
    procedureNotFound: "omnirelay.procedure.not_found",
    /** already-exists: a procedure with that name is already registered; metadata `procedure`. */
    procedureDuplicate: "omnirelay.procedure.duplicate",
    /** not-found: an HTTP inbound has no route for the method and path (only `POST` calls, `/healthz`, `/readyz`). */
    routeNotFound: "omnirelay.route.not_found",
    /** deadline-exceeded: the call's deadline passed (before it ran, or while it ran); metadata `procedure` from the middleware. */
    deadlineExceeded: "omnirelay.deadline_exceeded",
    /** cancelled: the caller went away, or the middleware was closed while the call was in flight. */
    cancelled: "omnirelay.cancelled",
    /** unavailable: the inbound, the dispatcher or the middleware is shutting down and takes no new calls. */
    inboundShuttingDown: "omnirelay.inbound.shutting_down",
    /** unavailable: the inbound cannot bind its address (in use, bad host); metadata `address`. */
    inboundBindFailed: "omnirelay.inbound.bind_failed",
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
    /** internal: the remote answered something that is not the procedure's response message; metadata `field`. */
    responseInvalid: "omnirelay.response.invalid",
    /** resource-exhausted: the rate limiter refused a permit; metadata `procedure`, `retryAfterMs`, `limiter`. */
    rateLimited: "omnirelay.rate_limited",
    /**
     * internal: the handler failed with something that is not an `OmniRelayError` (a bug: the message is generic,
     * the details are in the server log); also the code `OmniRelayError.from` gives anything it does not know.
     */
    internal: "omnirelay.internal",
    /** unknown: an error arrived without a code (`OmniRelayError.fromWire`, a batch result that names none). */
    unknown: "omnirelay.unknown",
  },
  /** Authentication and authorization middleware. Prefix `omnirelay.auth.`. */
  auth: {
    /**
     * unauthenticated: the call carries no principal (nor verified client certificate) and needs one; metadata
     * `procedure` (RPC), `rpc` (replication hub) or `path` (control plane).
     */
    required: "omnirelay.auth.required",
    /** unauthenticated: a bearer token is present but is not a valid JWT for the configured keys; metadata `reason`. */
    invalidToken: "omnirelay.auth.invalid_token",
    /** unavailable: the keys needed to verify a JWT could not be obtained (remote JWKS unreachable). */
    keysUnavailable: "omnirelay.auth.keys_unavailable",
    /**
     * permission-denied: no authorization rule allows the principal to call the procedure; metadata `procedure` (RPC)
     * or `path` (control plane).
     */
    forbidden: "omnirelay.auth.forbidden",
  },
  /** The gRPC transport (`@omnirelay/transport-grpc`). Prefix `omnirelay.grpc.`. */
  grpc: {
    /** unimplemented: the outbound cannot carry this procedure (not a ResourceLease verb); metadata `procedure`. */
    procedureUnsupported: "omnirelay.grpc.procedure_unsupported",
    /** internal: a procedure answered JSON that the rpc's response message cannot carry; metadata `field`. */
    responseInvalid: "omnirelay.grpc.response_invalid",
    /** any: the remote failed without OmniRelay error trailers (not an OmniRelay server); the status is the one it sent. */
    remoteFailed: "omnirelay.grpc.remote_failed",
  },
  /** The diagnostics control plane (`@omnirelay/diagnostics`) and the CLI that reads it. Prefix `omnirelay.control.`. */
  controlPlane: {
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
  },
  /** The ResourceLease queue, its procedures and its client. Prefix `resourcelease.`. */
  resourceLease: {
    /** invalid-argument: enqueue/restore without a payload; metadata `field`. */
    payloadRequired: "resourcelease.payload.required",
    /** invalid-argument: `resourceType` missing or blank; metadata `field`. */
    payloadResourceTypeRequired: "resourcelease.payload.resource_type_required",
    /** invalid-argument: `resourceId` missing or blank; metadata `field`. */
    payloadResourceIdRequired: "resourcelease.payload.resource_id_required",
    /** invalid-argument: `partitionKey` missing or blank; metadata `field`. */
    payloadPartitionKeyRequired: "resourcelease.payload.partition_key_required",
    /** invalid-argument: `payloadEncoding` missing or blank; metadata `field`. */
    payloadEncodingRequired: "resourcelease.payload.encoding_required",
    /** invalid-argument: a payload field has the wrong type or is too large; metadata `field` (and `limit`). */
    payloadInvalid: "resourcelease.payload.invalid",
    /** invalid-argument: a payload's body is larger than the queue's `maxBodyBytes`; metadata `field`, `limit`. */
    payloadTooLarge: "resourcelease.payload.too_large",
    /**
     * invalid-argument: a request argument is out of range (`maxItems`, `waitMs`, …); metadata `field` names it, with
     * `limit` for a batch too large and `sequenceId` for a restored id out of range.
     */
    argumentInvalid: "resourcelease.argument.invalid",
    /** invalid-argument: options given to a constructor (or `open`, `close`) are invalid; metadata `option` names it. */
    optionsInvalid: "resourcelease.options.invalid",
    /** invalid-argument: an ownership token is missing or malformed. */
    leaseTokenRequired: "resourcelease.lease.token_required",
    /** not-found: the token was never issued by this queue; metadata `sequenceId`. */
    leaseUnknownToken: "resourcelease.lease.unknown_token",
    /**
     * failed-precondition: the token was issued but its lease has ended (completed, failed, expired or re-granted);
     * a worker also aborts its handler with it when the server rejects a renewal (metadata `sequenceId`, `attempt`,
     * `fencingToken`).
     */
    leaseFenced: "resourcelease.lease.fenced",
    /** permission-denied: the lease is bound to another principal; metadata `sequenceId`. */
    leasePrincipalMismatch: "resourcelease.lease.principal_mismatch",
    /** none: `lastError.code` of an item re-delivered after its lease expired. */
    leaseExpired: "resourcelease.lease.expired",
    /**
     * deadline-exceeded: a worker's lease deadline minus `safetyMarginMs` arrived without a successful renewal; the
     * reason of the handler's signal. Metadata `sequenceId`, `attempt`, `fencingToken`.
     */
    leaseExpiredLocally: "resourcelease.lease.expired_locally",
    /** unavailable: the queue is draining; enqueue and lease are refused until `restore`. */
    draining: "resourcelease.draining",
    /** unavailable: the queue is closed. */
    queueClosed: "resourcelease.queue.closed",
    /**
     * resource-exhausted: the queue holds `capacity` items (metadata `capacity`), or its items' bytes would pass
     * `maxBytes` (metadata `limit: "bytes"`, `maxBytes`).
     */
    queueFull: "resourcelease.queue.full",
    /** resource-exhausted: the queue's item ids reached the end of the safe-integer range; it takes no more items. */
    queueSequenceExhausted: "resourcelease.queue.sequence_exhausted",
    /** resource-exhausted: backpressure is active; metadata `retryAfterMs`. */
    backpressure: "resourcelease.backpressure",
    /** invalid-argument: a restore entry is missing. */
    restorePendingItemRequired: "resourcelease.restore.pending_item_required",
    /**
     * already-exists: a restored item's sequence id was already used by this queue (and is not one of its own drained
     * items coming back); restore with `renumber` to give the items fresh ids. Metadata `sequenceId`.
     */
    restoreDuplicateItem: "resourcelease.restore.duplicate_item",
    /** cancelled: the caller's signal aborted the call (queue, replicators, stores, the hub client). */
    cancelled: "resourcelease.cancelled",
    /** deadline-exceeded: a wait (backpressure) outlived the caller's deadline. */
    deadlineExceeded: "resourcelease.deadline_exceeded",
    /** none: the default `lastError.code` of a failure when the worker gave none. */
    failed: "resourcelease.failed",
  },
  /** The ResourceLease worker. Prefix `resourcelease.worker.`. */
  worker: {
    /**
     * unavailable, cancelled: the worker is closing. `unavailable` when a handler outlived `graceMs` (the item was
     * failed with requeue); `cancelled` as the reason its own waiting `lease` call is aborted with.
     */
    shuttingDown: "resourcelease.worker.shutting_down",
    /** unavailable: the client returned more grants than the worker had free slots; the extras were failed with requeue. */
    noFreeSlot: "resourcelease.worker.no_free_slot",
    /** failed-precondition: `start()` after `close()`. */
    closed: "resourcelease.worker.closed",
    /** failed-precondition: `context.heartbeat()` after the handler settled. */
    leaseSettled: "resourcelease.worker.lease_settled",
  },
  /** Replication plumbing: replicators, sinks, event logs, checkpoints, rebuilds. Prefix `resourcelease.replication.`. */
  replication: {
    /**
     * unavailable: a replication write failed; the queue refuses work until it is rebuilt from its log. Metadata
     * `replication.sequence` (the queue's first unwritten event) or `replication.stage` (a sink or inner replicator).
     */
    failed: "resourcelease.replication.failed",
    /**
     * invalid-argument: a stored or received event (or pending item) does not have the expected shape; metadata
     * `field` (and `replication.sequence` when the number itself is wrong).
     */
    eventInvalid: "resourcelease.replication.event_invalid",
    /**
     * failed-precondition: an event's sequence number is not greater than the last one accepted. Sequence numbers are
     * assigned by the queue in mutation order, so this means a bug upstream; metadata `replication.sequence`,
     * `replication.last`.
     */
    outOfOrder: "resourcelease.replication.out_of_order",
    /** data-loss: a checkpoint loaded from a checkpoint store is malformed; metadata `field`. */
    checkpointInvalid: "resourcelease.replication.checkpoint_invalid",
    /** already-exists: the sink is already registered with this replicator. */
    sinkDuplicate: "resourcelease.replication.sink_duplicate",
    /** failed-precondition: a replayed event does not fit the state being rebuilt; metadata `sequenceNumber`, `eventType`. */
    replayMismatch: "resourcelease.replication.replay_mismatch",
  },
  /** The gRPC replication hub and its client (`@omnirelay/replicator-grpc`). Prefix `resourcelease.replication.grpc.`. */
  replicationHub: {
    /** failed-precondition: a batch would leave a gap at the hub; metadata `replication.acked`, `replication.sequence`. */
    gap: "resourcelease.replication.grpc.gap",
    /**
     * invalid-argument: a publish stream did not start with a hello, or named an invalid source, or sent an event
     * that does not decode; metadata `field` (and `replication.sequence`).
     */
    protocol: "resourcelease.replication.grpc.protocol",
    /** not-found: the hub has no log for the source; metadata `replication.source`. */
    sourceNotFound: "resourcelease.replication.grpc.source_not_found",
    /**
     * aborted: a newer publish stream for the same source replaced this one. No longer sent: a hub now refuses the
     * second stream instead (`resourcelease.replication.grpc.source_busy`). Kept so older clients' matches still compile.
     */
    superseded: "resourcelease.replication.grpc.superseded",
    /**
     * already-exists: the source already has a live publish stream (one per source); metadata `replication.source`.
     * The client retries; a dead stream is dropped by the hub's keepalive within about 15 s.
     */
    sourceBusy: "resourcelease.replication.grpc.source_busy",
    /**
     * aborted: a re-sent event differs from the one the hub stored at that sequence number; nothing of the batch is
     * stored or acknowledged. Metadata `replication.source`, `replication.sequence`, `replication.acked`. Two writers
     * used one node id, or a node lost its log and numbered again from an old point: an operator must look.
     */
    conflict: "resourcelease.replication.grpc.conflict",
    /**
     * permission-denied: the caller's identity may not publish as, or read, the node id it named; metadata
     * `replication.source`, `rpc`.
     */
    permissionDenied: "resourcelease.replication.grpc.permission_denied",
    /**
     * unavailable, data-loss, internal: the source's log failed to open or to store a batch (`unavailable`,
     * metadata `replication.source`); a subscriber asked for events the log no longer holds (`data-loss`, metadata
     * `replication.sequence`); the hub failed with something that is not an `OmniRelayError` (`internal`).
     */
    storeFailed: "resourcelease.replication.grpc.store_failed",
    /** unavailable: the hub is shutting down or the client is closed. */
    closed: "resourcelease.replication.grpc.closed",
    /** resource-exhausted: the client's outbox is at its hard cap (`overflow: 'lag'`); metadata `replication.pending`. */
    outboxFull: "resourcelease.replication.grpc.outbox_full",
    /** deadline-exceeded: the hub did not answer a hello or acknowledge sent events in time; metadata `replication.hub`. */
    ackTimeout: "resourcelease.replication.grpc.ack_timeout",
    /** unavailable: the hub could not be reached or the call failed at the transport. */
    unavailable: "resourcelease.replication.grpc.unavailable",
  },
  /** Deterministic capture and its state stores. Prefix `resourcelease.deterministic.`. */
  deterministic: {
    /** invalid-argument: no `stateStore` was given; metadata `option`. */
    stateStoreRequired: "resourcelease.deterministic.state_store_required",
    /**
     * invalid-argument: the event has no sequence number (below 1); it would collide with every other such event.
     * Metadata `field`.
     */
    sequenceRequired: "resourcelease.deterministic.sequence_required",
    /** failed-precondition: the version record of the event's change scope is foreign or outside [min, max]; metadata `key`. */
    versionConflict: "resourcelease.deterministic.version_conflict",
    /** failed-precondition: the effect id is taken by a record that is not an effect; metadata `key`, `kind`. */
    effectConflict: "resourcelease.deterministic.effect_conflict",
    /** invalid-argument: a state-store key (or an effect id) is missing or blank; metadata `field`. */
    keyRequired: "resourcelease.deterministic.key_required",
    /** invalid-argument: a record given to a state store is malformed (blank kind, non-integer version, no payload); metadata `field`. */
    recordInvalid: "resourcelease.deterministic.record_invalid",
  },
  /** The SQLite replicator and state store (`@omnirelay/replicator-sqlite`). Prefix `resourcelease.sqlite.`. */
  sqlite: {
    /**
     * data-loss: the log's files are damaged or shorter than they were, so opening would lose acknowledged events.
     * Metadata `reason` and `file` (`log`, `wal` or `high_water`) always, `sequence` (the first bad or missing sequence
     * number) when known, `path` for file-level damage. Reasons: a row — `checksum`, `decode`, `gap`, `mismatch`,
     * `missing_head`, `snapshot_checksum`, `snapshot_decode`; the file — `header`, `truncated`, `sqlite` (SQLite found
     * the file malformed; metadata `sqliteCode`); the WAL — `wal_checksum`, `wal_header` (committed frames follow a
     * damaged one; metadata `frame`, `offset`); the high-water record — `behind_high_water` (the log ends below the
     * sequence the record says was committed; metadata `lastSequence`, `highWaterSequence`), `missing_log` (a record
     * but no log), `high_water_damaged` (the record itself fails its checksum or does not parse).
     * See `SqliteResourceLeaseReplicator.repair`.
     */
    corrupt: "resourcelease.sqlite.corrupt",
    /**
     * failed-precondition: a published event's sequence number is not the last one + 1 (a gap or a repeat);
     * metadata `sequence`, `expected`. The replicator is faulted afterwards.
     */
    sequenceGap: "resourcelease.sqlite.sequence_gap",
    /**
     * unavailable: a write failed (or an earlier one did, so the replicator is faulted and rejects every later
     * publish until it is reopened); metadata `sequence` of the first event that was not committed, and `fault.code`
     * (an earlier failure) or `path` (the log could not be created).
     */
    writeFailed: "resourcelease.sqlite.write_failed",
    /** unavailable: the replicator or store was closed. */
    closed: "resourcelease.sqlite.closed",
    /** unavailable: another process holds the log open (a second writer would corrupt the order); metadata `path`. */
    locked: "resourcelease.sqlite.locked",
    /**
     * failed-precondition: the file was written by a newer version of this package; metadata `component`, `version`,
     * `supported`.
     */
    schemaTooNew: "resourcelease.sqlite.schema_too_new",
  },
  /**
   * The object-storage replicator, reader, governance sink and stores (`@omnirelay/replicator-object-storage`).
   * Prefix `resourcelease.objectstorage.`.
   */
  objectStorage: {
    /** invalid-argument: an object key is not allowed by the store (empty, `..`, absolute, …); metadata `key`. */
    keyInvalid: "resourcelease.objectstorage.key_invalid",
    /**
     * already-exists: a create-if-absent write found the key already present. History is never overwritten; for the
     * replicator this means another writer (or a stale one) owns the prefix. Metadata `key` (and the replicator's
     * `sequence`).
     */
    exists: "resourcelease.objectstorage.exists",
    /**
     * failed-precondition: a published event's sequence number is not exactly the last stored one + 1 (a gap or a
     * repeat, e.g. a restarted producer that began again at 1). Nothing is written. Metadata `sequence`, `expected`.
     */
    sequenceGap: "resourcelease.objectstorage.sequence_gap",
    /**
     * data-loss: a stored segment is missing, unreadable or inconsistent (bad JSON, wrong first sequence, a gap
     * inside it). Metadata `key`, `reason`.
     */
    corrupt: "resourcelease.objectstorage.corrupt",
    /**
     * unavailable: a write failed, or an earlier one did (the replicator is faulted and rejects every later publish
     * until it is reopened, because the outcome of the failed write is unknown). Metadata `sequence`, and `key` (the
     * segment) or `fault.code` (an earlier failure).
     */
    writeFailed: "resourcelease.objectstorage.write_failed",
    /** unavailable: a store request failed (network, permissions, throttling); metadata `operation`, `key`. */
    storeFailed: "resourcelease.objectstorage.store_failed",
    /** unavailable: the replicator, sink or store was closed. */
    closed: "resourcelease.objectstorage.closed",
  },
  /** Peer selection (`@omnirelay/core/peers`). Prefix `peers.`. */
  peers: {
    /** unavailable: the peer list is empty. */
    noneRegistered: "peers.none_registered",
    /** unavailable: no peer is available and eligible, and the caller gave no deadline. */
    noneAvailable: "peers.none_available",
    /** resource-exhausted: every available, eligible peer is at its concurrency limit. */
    allBusy: "peers.all_busy",
    /** deadline-exceeded: no peer could be acquired before the caller's deadline; metadata `deadlineMs`. */
    deadlineExceeded: "peers.deadline_exceeded",
    /** cancelled: the caller's signal aborted the acquisition. */
    cancelled: "peers.cancelled",
    /** invalid-argument: an argument of a peer call is out of range; metadata `field` names it. */
    argumentInvalid: "peers.argument_invalid",
    /** already-exists: a peer with the same id is already in the list; metadata `peerId`. */
    duplicatePeer: "peers.duplicate_peer",
  },
} as const;

/** The areas of {@link ErrorCodes}. */
type ErrorCodeGroups = typeof ErrorCodes;

/** Any code of {@link ErrorCodes}: the union of every entry's string. */
export type ErrorCode = {
  [G in keyof ErrorCodeGroups]: ErrorCodeGroups[G][keyof ErrorCodeGroups[G]];
}[keyof ErrorCodeGroups];
