import { peersCodes, resourceLeaseCodes, workerCodes } from "./queue-codes.js";
import {
  deterministicCodes,
  jetstreamCodes,
  objectStorageCodes,
  replicationCodes,
  replicationHubCodes,
  sqliteCodes,
} from "./replication-codes.js";
import { authCodes, controlPlaneCodes, grpcCodes, rpcCodes } from "./rpc-codes.js";

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
 * remote sent; `none` marks a code that is never thrown, only stored as an item's `lastError.code`. The entries of
 * each group live in a sibling file (`rpc-codes.ts`, `queue-codes.ts`, `replication-codes.ts`); this object is the
 * one catalog. docs/protocol.md lists every entry in one table, checked against the catalog by
 * `packages/core/test/error-codes.test.ts` (`UPDATE_DOCS=1` rewrites the table).
 */
export const ErrorCodes = {
  /** The RPC layer: dispatcher, HTTP and gRPC inbounds and outbounds, middleware. Prefix `omnirelay.`. */
  rpc: rpcCodes,
  /** Authentication and authorization middleware. Prefix `omnirelay.auth.`. */
  auth: authCodes,
  /** The gRPC transport (`@omnirelay/transport-grpc`). Prefix `omnirelay.grpc.`. */
  grpc: grpcCodes,
  /** The diagnostics control plane (`@omnirelay/diagnostics`) and the CLI that reads it. Prefix `omnirelay.control.`. */
  controlPlane: controlPlaneCodes,
  /** The ResourceLease queue, its procedures and its client. Prefix `resourcelease.`. */
  resourceLease: resourceLeaseCodes,
  /** The ResourceLease worker. Prefix `resourcelease.worker.`. */
  worker: workerCodes,
  /** Replication plumbing: replicators, sinks, event logs, checkpoints, rebuilds. Prefix `resourcelease.replication.`. */
  replication: replicationCodes,
  /** The gRPC replication hub and its client (`@omnirelay/replicator-grpc`). Prefix `resourcelease.replication.grpc.`. */
  replicationHub: replicationHubCodes,
  /** Deterministic capture and its state stores. Prefix `resourcelease.deterministic.`. */
  deterministic: deterministicCodes,
  /** The SQLite replicator and state store (`@omnirelay/replicator-sqlite`). Prefix `resourcelease.sqlite.`. */
  sqlite: sqliteCodes,
  /**
   * The object-storage replicator, reader, governance sink and stores (`@omnirelay/replicator-object-storage`).
   * Prefix `resourcelease.objectstorage.`.
   */
  objectStorage: objectStorageCodes,
  /** The JetStream event log (`@omnirelay/replicator-jetstream`). Prefix `resourcelease.jetstream.`. */
  jetstream: jetstreamCodes,
  /** Peer selection (`@omnirelay/core/peers`). Prefix `peers.`. */
  peers: peersCodes,
} as const;

/** The areas of {@link ErrorCodes}. */
type ErrorCodeGroups = typeof ErrorCodes;

/** Any code of {@link ErrorCodes}: the union of every entry's string. */
export type ErrorCode = {
  [G in keyof ErrorCodeGroups]: ErrorCodeGroups[G][keyof ErrorCodeGroups[G]];
}[keyof ErrorCodeGroups];
