import type { Clock, Logger, ResourceLeaseReplicationSink } from "@omnirelay/core";
import type { GrpcReplicationHub } from "./hub.js";
import type { ReplicationHubAuthOptions } from "./hub-auth.js";
import type { ReplicationHubStore } from "./store.js";

/** Server TLS of a {@link GrpcReplicationHub}. PEM strings or buffers. */
export interface ReplicationHubTlsOptions {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /**
   * CA that client certificates must chain to. Required with `requireClientCertificate`; without that flag grpc-js
   * does not ask for a client certificate at all, so the CA is unused.
   */
  readonly ca?: string | Buffer;
  /** Mutual TLS: refuse clients without a certificate signed by `ca`. @defaultValue false */
  readonly requireClientCertificate?: boolean;
}

/** Options of a {@link GrpcReplicationHub}. */
export interface GrpcReplicationHubOptions {
  /** Where the per-source logs live. Required. */
  readonly store: ReplicationHubStore;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Server TLS; without it the hub speaks plaintext h2c (and then needs `auth.allowUnauthenticated`). */
  readonly tls?: ReplicationHubTlsOptions;
  /**
   * Who may publish as and read which node id. By default a caller must present a verified identity (mutual TLS:
   * a client certificate signed by `tls.ca`; or a JWT with `auth.jwt`) and may publish as and read only a node id
   * equal to one of its names.
   * @defaultValue {} (identity required, `selfGrant`, no other grants)
   */
  readonly auth?: ReplicationHubAuthOptions;
  /**
   * How long a hello for a source that already has a live publish stream waits for that stream to close before it
   * is refused with `resourcelease.replication.grpc.source_busy`. Covers a client that dropped its stream and
   * reconnected before the hub heard of the drop; a dead stream is dropped by the keepalive (10 s + 5 s).
   * @defaultValue 1000
   */
  readonly busySourceWaitMs?: number;
  /**
   * Receive every stored event (metadata `replication.source` added), in order per source, before the batch is
   * acknowledged. A failing sink is logged and counted, never retried: durable consumers should use `Subscribe`.
   * @defaultValue []
   */
  readonly sinks?: readonly ResourceLeaseReplicationSink[];
  /**
   * A source whose log could not be opened (at start, or when its first hello created it) is served as failed: its
   * calls are answered with the open error while the other sources are served. A publish hello for it tries the
   * open again once this long has passed since the last try, so a repaired or restored file comes back without a
   * restart; Subscribe and Checkpoint never open a log.
   * @defaultValue 5000
   */
  readonly failedSourceRetryMs?: number;
  /**
   * Most failed sources kept for sources the store did not list (ids it refused to create, e.g. past the app's
   * `--max-sources`): each is listed by `sourceStatuses()`, `metrics()` and ListSources, so a caller naming made-up
   * ids grew the hub without bound. Past it, the entry a publish hello named least recently is forgotten (its next
   * hello simply tries the open again) and counted in `failedSourcesEvicted` and
   * `omnirelay_replication_hub_failed_sources_evicted_total`.
   * Sources whose log the store has (a damaged file) are never forgotten: the store's files bound them. Their
   * error lines are always written; the others at most 10 a minute, the rest summed up in one line per minute.
   * @defaultValue 1000
   */
  readonly maxFailedSources?: number;
  /**
   * Time a Publish stream has to send its whole hello once opened; a later one is ended `DEADLINE_EXCEEDED`
   * `omnirelay.request.timeout` (metadata `limitMs`), so streams that never say hello cannot pile up.
   * @defaultValue 10000
   */
  readonly helloTimeoutMs?: number;
  /**
   * Most calls (HTTP/2 streams) one connection may have open at once (`grpc.max_concurrent_streams`); a stream over it
   * is refused with `REFUSED_STREAM`, which clients retry once one is free. A replicator uses one per source.
   * @defaultValue 100
   */
  readonly maxConcurrentStreams?: number;
  /**
   * Most events one Publish batch may hold; a larger batch is refused, before it is decoded, with invalid-argument
   * `resourcelease.replication.grpc.protocol` (metadata `field: events`, `limit`). A replicator sends at most its
   * `maxBatchEvents` (256 by default); without a cap one 16 MiB message of tiny events decoded to ~578 MiB.
   * @defaultValue 10000
   */
  readonly maxBatchEvents?: number;
  /** Largest accepted message. @defaultValue 16777216 (16 MiB) */
  readonly maxMessageBytes?: number;
  /** How long `close()` lets calls finish before cancelling them. @defaultValue 5000 */
  readonly shutdownGraceMs?: number;
  /** @defaultValue systemClock */
  readonly clock?: Clock;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}
