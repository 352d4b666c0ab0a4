// Codes of replication and of the stores behind it, grouped as in ErrorCodes. Each entry's
// TSDoc follows the rules in codes.ts; only codes.ts assembles these, and only ErrorCodes is public.

/** The `ErrorCodes.replication` group. */
export const replicationCodes = {
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
  /**
   * data-loss: a verified rebuild found a sequence number missing from the stream (or out of order); metadata
   * `replication.sequence` (the first missing one), `replication.found`.
   */
  sequenceGap: "resourcelease.replication.sequence_gap",
  /**
   * data-loss: a verified rebuild found an event whose bytes do not hash to the `previousHash` its successor carries
   * (it, or that link, was altered), or an event without `previousHash` after the chain started; metadata
   * `replication.sequence` (the first diverging event).
   */
  chainBroken: "resourcelease.replication.chain_broken",
  /**
   * data-loss: a verified rebuild could not read or decode the event at a sequence number; metadata
   * `replication.sequence`.
   */
  eventUnreadable: "resourcelease.replication.event_unreadable",
} as const;

/** The `ErrorCodes.replicationHub` group. */
export const replicationHubCodes = {
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
   * unavailable, data-loss, internal, resource-exhausted: the source's log failed to open or to store a batch
   * (`unavailable`, metadata `replication.source`); a subscriber asked for events the log no longer holds
   * (`data-loss`, metadata `replication.sequence`); the hub failed with something that is not an `OmniRelayError`
   * (`internal`); the store refuses to create a log for one more source (`resource-exhausted`, metadata
   * `replication.source`, `limit`: the hub's `--max-sources` cap).
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
} as const;

/** The `ErrorCodes.deterministic` group. */
export const deterministicCodes = {
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
  /**
   * invalid-argument: a state-store key that the store cannot keep exactly (a lone UTF-16 surrogate, or a NUL
   * character where the backend's text has none), so two keys could collide; metadata `field`, `reason`.
   */
  keyInvalid: "resourcelease.deterministic.key_invalid",
  /**
   * unavailable: a shared state store's backend (Redis, PostgreSQL) could not be reached or failed the command; the
   * backend's error is the cause. Metadata `store`, `operation` (and `sqlState` from PostgreSQL).
   */
  storeUnavailable: "resourcelease.deterministic.store_unavailable",
  /** data-loss: a stored value cannot be read back as a record (written by something else, or damaged); metadata `store`, `key`. */
  storeCorrupt: "resourcelease.deterministic.store_corrupt",
  /** unavailable: the state store was closed; metadata `store`. */
  storeClosed: "resourcelease.deterministic.store_closed",
} as const;

/** The `ErrorCodes.sqlite` group. */
export const sqliteCodes = {
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
} as const;

/** The `ErrorCodes.objectStorage` group. */
export const objectStorageCodes = {
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
} as const;

/** The `ErrorCodes.jetstream` group. */
export const jetstreamCodes = {
  /**
   * failed-precondition: the stream refused an append because the shard's subject does not end where this log
   * expected (`Nats-Expected-Last-Subject-Sequence`): another writer appended to the shard, so this one is stale.
   * Nothing of the refused message was stored. The log is faulted afterwards: every later publish is refused with
   * this code until it is reopened. Metadata `jetstream.subject`, `jetstream.expected_last_subject_sequence`,
   * `replication.sequence` (first event of the refused message).
   */
  appendRefused: "resourcelease.jetstream.append_refused",
  /**
   * unavailable: an append was not acknowledged (timeout, no JetStream responder, connection lost, another API
   * error). Whether it was stored is unknown, so the log is faulted: every later publish is refused with this code
   * until it is reopened, which reads what the stream holds. Metadata `jetstream.subject`, `replication.sequence`.
   */
  appendFailed: "resourcelease.jetstream.append_failed",
  /**
   * failed-precondition: a published event's sequence number is not the last one + 1 (a gap or a repeat); nothing
   * of the batch is sent. Metadata `replication.sequence`, `replication.expected`.
   */
  sequenceGap: "resourcelease.jetstream.sequence_gap",
  /**
   * data-loss: a stored message of the shard does not decode, or its events do not continue the ones before it
   * (metadata `jetstream.subject`, `jetstream.stream_sequence`, `reason`); or a stored snapshot matches its digest but
   * does not decode (metadata `jetstream.snapshot`, `reason`).
   */
  corrupt: "resourcelease.jetstream.corrupt",
  /** unavailable: the stream could not be reached, created or read (open, read); metadata `jetstream.stream`. */
  unavailable: "resourcelease.jetstream.unavailable",
  /** unavailable: the log was closed. */
  closed: "resourcelease.jetstream.closed",
  /**
   * failed-precondition: a shard was to be pinned (`omnirelay shards move`) to a node that is not a live member of
   * the placement's membership bucket; nothing was written. Metadata `node`, `members` (comma-separated node ids).
   */
  notMember: "resourcelease.jetstream.not_member",
} as const;
