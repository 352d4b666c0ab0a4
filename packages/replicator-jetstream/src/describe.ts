import type { StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { unavailableError } from "./errors.js";
import type { StreamAccess } from "./stream.js";

/** Counters and settings of a `JetStreamResourceLeaseEventLog`, for diagnostics. */
export interface JetStreamEventLogStats {
  readonly stream: string;
  readonly subject: string;
  /** Replicas of the stream as the server reported them at open. */
  readonly replicas: number;
  /** `nats-server` version the connection reported at open. */
  readonly serverVersion: string;
  /** Largest message body the log writes: the server's max payload less room for headers. */
  readonly maxMessageBytes: number;
  /** Sequence number of the last acknowledged event (0 when the log is empty). */
  readonly lastSequence: number;
  /** Last sequence number accepted by `publish` (acknowledged or waiting for its append). */
  readonly lastAcceptedSequence: number;
  /** Stream sequence of the shard's last message: what the next append expects. */
  readonly lastSubjectSequence: number;
  /** Messages appended since open (a group commit is one; a batch above `maxMessageBytes` is several). */
  readonly appendedMessages: number;
  /** Events acknowledged since open. */
  readonly appendedEvents: number;
  /** Epoch of the owner-epoch marker this log appended (`appendOwnerMarker`), if it did. */
  readonly ownerEpoch: number | undefined;
  /** The error that faulted the log (every publish refused until it is reopened), if any. */
  readonly fault: { readonly code: string; readonly message: string } | undefined;
}

/** What the log knows about when the server fsyncs what it acknowledged. */
export interface JetStreamSyncSetting {
  /**
   * Whether the server fsyncs every write before acknowledging it (`sync_interval: always`, servers 2.10+): `false`
   * means an acknowledged append can be lost in a power loss of the server (R1) or of a quorum (R3); `'unknown'` when
   * neither the server's `/varz` (give `monitorUrl`) nor its version tells.
   */
  readonly syncEveryWrite: boolean | "unknown";
  /** The background fsync interval in milliseconds, when known (the servers' default is 2 minutes). */
  readonly syncIntervalMs: number | undefined;
  /**
   * Where this comes from: `'varz'` (the monitoring endpoint of the server at `monitorUrl` — that one server's
   * setting), `'server-version'` (servers before 2.10 have no setting: always every 2 minutes), or `'unknown'`.
   */
  readonly source: "varz" | "server-version" | "unknown";
  /** One sentence for a human. */
  readonly detail: string;
}

/** A description of a JetStream log's server and stream, for diagnostics. */
export interface JetStreamEventLogDescription {
  /** `nats-server` version of the server the connection is on. */
  readonly serverVersion: string;
  /** Name of the server the connection is on. */
  readonly serverName: string;
  readonly stream: string;
  readonly subject: string;
  /** Replicas of the stream (as the server reports them now). */
  readonly replicas: number;
  /** The stream's Raft group when it is clustered: its leader and the other replicas. */
  readonly cluster: { readonly leader: string | undefined; readonly replicas: readonly string[] } | undefined;
  /** When the server fsyncs what it acknowledged. */
  readonly sync: JetStreamSyncSetting;
}

const DEFAULT_SYNC_MS = 120_000;

/** Whether `version` (`major.minor.patch`) is before 2.10. Internal. */
function before210(version: string): boolean | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(version);
  if (!match) return undefined;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major < 2 || (major === 2 && minor < 10);
}

/**
 * The sync setting from a server's `/varz` JSON: `jetstream.config.sync_always` (2.10+, omitted when false) and
 * `jetstream.config.sync_interval` (nanoseconds, omitted at the default). Internal.
 */
export function syncFromVarz(varz: unknown): JetStreamSyncSetting {
  const config = (varz as { jetstream?: { config?: Record<string, unknown> } } | null)?.jetstream?.config;
  if (config === undefined) {
    return {
      syncEveryWrite: "unknown",
      syncIntervalMs: undefined,
      source: "unknown",
      detail: "/varz has no JetStream.",
    };
  }
  if (config.sync_always === true) {
    return {
      syncEveryWrite: true,
      syncIntervalMs: undefined,
      source: "varz",
      detail: "The server fsyncs every write before acknowledging it (sync_interval: always).",
    };
  }
  const ns = typeof config.sync_interval === "number" && config.sync_interval > 0 ? config.sync_interval : undefined;
  const ms = ns === undefined ? DEFAULT_SYNC_MS : Math.round(ns / 1e6);
  return {
    syncEveryWrite: false,
    syncIntervalMs: ms,
    source: "varz",
    detail: `The server acknowledges before it fsyncs; it fsyncs every ${ms} ms${ns === undefined ? " (the default)" : ""}.`,
  };
}

/** The sync setting from the server's version alone (no `/varz`). Internal. */
export function syncFromVersion(version: string): JetStreamSyncSetting {
  if (before210(version) === true) {
    return {
      syncEveryWrite: false,
      syncIntervalMs: DEFAULT_SYNC_MS,
      source: "server-version",
      detail: `nats-server ${version} has no sync_interval setting: it acknowledges before it fsyncs, and fsyncs every 2 minutes.`,
    };
  }
  return {
    syncEveryWrite: "unknown",
    syncIntervalMs: undefined,
    source: "unknown",
    detail: `unknown: nats-server ${version} may set sync_interval (default every 2 minutes); give monitorUrl to read its /varz.`,
  };
}

/**
 * Reads `<monitorUrl>/varz` (the server's monitoring port), or falls back to the version. A monitoring endpoint
 * that does not answer gives `'unknown'` with the reason. Internal.
 */
export async function describeSync(
  version: string,
  monitorUrl: string | undefined,
  timeoutMs: number,
): Promise<JetStreamSyncSetting> {
  if (monitorUrl === undefined) return syncFromVersion(version);
  try {
    const response = await fetch(new URL("/varz", monitorUrl), { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return syncFromVarz(await response.json());
  } catch (error) {
    const fallback = syncFromVersion(version);
    const reason = error instanceof Error ? error.message : String(error);
    return { ...fallback, detail: `${fallback.detail} (/varz at ${monitorUrl} did not answer: ${reason})` };
  }
}

/** The stream's Raft group from its info. Internal. */
export function clusterOf(info: StreamInfo): JetStreamEventLogDescription["cluster"] {
  const cluster = info.cluster;
  if (cluster === undefined || (cluster.leader === undefined && (cluster.replicas ?? []).length === 0))
    return undefined;
  return { leader: cluster.leader, replicas: (cluster.replicas ?? []).map((r) => r.name) };
}

/** What `JetStreamResourceLeaseEventLog.describe()` answers. Internal. */
export async function describeLog(
  access: StreamAccess,
  connection: NatsConnection,
): Promise<JetStreamEventLogDescription> {
  const { settings } = access;
  let info: StreamInfo;
  try {
    info = await access.jsm.streams.info(settings.stream);
  } catch (error) {
    throw unavailableError(error, settings.stream, "describe");
  }
  const serverVersion = connection.info?.version ?? "unknown";
  return {
    serverVersion,
    serverName: connection.info?.server_name ?? "unknown",
    stream: settings.stream,
    subject: settings.subject,
    replicas: info.config.num_replicas,
    cluster: clusterOf(info),
    sync: await describeSync(serverVersion, settings.monitorUrl, settings.appendTimeoutMs),
  };
}
