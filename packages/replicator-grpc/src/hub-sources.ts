import {
  type Clock,
  ErrorCodes,
  isOmniRelayError,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationSink,
} from "@omnirelay/core";
import { FailureLog } from "./failure-log.js";
import { HubSource, type ReplicationHubSourceStatus } from "./hub-source.js";
import { checkSourceId, type ReplicationSourceId, sourceKey, sourceNotFound } from "./source.js";
import type { ReplicationHubStore } from "./store.js";

/** What the registry needs from its hub. Internal. */
export interface HubSourcesDeps {
  readonly store: ReplicationHubStore;
  readonly sinks: readonly ResourceLeaseReplicationSink[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long after a failed open a publish hello may try again. */
  readonly retryMs: number;
  /** Most failed sources kept that the store did not list (see `GrpcReplicationHubOptions.maxFailedSources`). */
  readonly maxFailed: number;
}

interface Failed {
  readonly id: ReplicationSourceId;
  readonly error: OmniRelayError;
  /** The store listed the source (it had a log): never let a retry create an empty one in its place. */
  readonly listed: boolean;
  readonly since: number;
  readonly lastAttemptAt: number;
}

/**
 * The hub's sources: the open ones, the ones whose log could not be opened (served as failed, never as missing),
 * and the opens in progress. Internal.
 */
export class HubSources {
  /** Sources whose log is open, by key. */
  readonly opened = new Map<string, HubSource>();
  /** In order of the last publish hello naming them (re-inserted on each), so the first unlisted one is evicted. */
  private readonly failed = new Map<string, Failed>();
  private readonly pending = new Map<string, Promise<HubSource>>();
  private readonly failureLog: FailureLog;
  private unlistedFailed = 0;
  private evictedCount = 0;

  constructor(private readonly deps: HubSourcesDeps) {
    this.failureLog = new FailureLog(deps.clock, deps.logger);
  }

  /** Failed sources forgotten to keep the record within `maxFailed` since the hub started. */
  get evicted(): number {
    return this.evictedCount;
  }

  /**
   * Opens every log the store lists, one after the other. A log that does not open is logged and kept as failed; the
   * others are served.
   * @throws whatever the store's `list()` throws: without the list the hub knows none of its sources.
   */
  async openListed(): Promise<void> {
    for (const listed of await this.deps.store.list()) {
      const id = checkSourceId(listed);
      if (this.opened.has(sourceKey(id))) continue;
      await this.open(id, true).catch(() => undefined);
    }
  }

  /**
   * The source a publish hello names: opened (created when the store has no log for it) on first use. A source that
   * failed to open is tried again once `retryMs` passed since the last try (a repaired or restored file comes back
   * without a restart); until then the hello gets the open error.
   * @throws OmniRelayError unavailable `resourcelease.replication.grpc.store_failed`.
   */
  forPublish(id: ReplicationSourceId): Promise<HubSource> {
    const key = sourceKey(id);
    const open = this.opened.get(key);
    if (open) return Promise.resolve(open);
    const pending = this.pending.get(key);
    if (pending) return pending;
    const failed = this.failed.get(key);
    if (failed && this.deps.clock.now() - failed.lastAttemptAt < this.deps.retryMs) {
      // Named again: moved to the end, so eviction takes the entries no publisher asked for the longest.
      this.failed.delete(key);
      this.failed.set(key, failed);
      return Promise.reject(failed.error);
    }
    const opening = this.open(id, false);
    this.pending.set(key, opening);
    const settled = () => this.pending.delete(key);
    opening.then(settled, settled);
    return opening;
  }

  /**
   * An open source, for Subscribe and Checkpoint (which never open a log).
   * @throws OmniRelayError the source's open error (unavailable `resourcelease.replication.grpc.store_failed`) when
   *   its log failed to open; not-found `resourcelease.replication.grpc.source_not_found` when the hub has none.
   */
  get(id: ReplicationSourceId): HubSource {
    const key = sourceKey(id);
    const source = this.opened.get(key);
    if (source) return source;
    const failed = this.failed.get(key);
    if (failed) throw failed.error;
    throw sourceNotFound(id);
  }

  /** Every source, open or failed, sorted by key. */
  statuses(): ReplicationHubSourceStatus[] {
    const all = [...this.opened.values()].map((s) => s.status());
    for (const [key, f] of this.failed) if (!this.opened.has(key)) all.push(failedStatus(f));
    return all.sort((a, b) => sourceKey(a).localeCompare(sourceKey(b)));
  }

  /** Closes every open log (failures logged). */
  async closeAll(): Promise<void> {
    this.failureLog.close();
    for (const source of this.opened.values()) {
      try {
        await source.log.close?.();
      } catch (error) {
        this.deps.logger.warn({ source: source.key, error: String(error) }, "closing a hub log failed");
      }
    }
  }

  private async open(id: ReplicationSourceId, listed: boolean): Promise<HubSource> {
    const key = sourceKey(id);
    const previous = this.failed.get(key);
    try {
      // A source that had a log (the store listed it) and is no longer listed was moved away or deleted: opening it
      // now would create an empty log in its place and accept the source's stream from wherever it resumes.
      if (previous?.listed && !(await this.stillListed(key))) throw gone(key);
      const log = await this.deps.store.open(id);
      let source: HubSource;
      try {
        const { sinks, clock, logger } = this.deps;
        source = await HubSource.open(id, log, { sinks, clock, logger });
      } catch (error) {
        await log.close?.().catch(() => undefined);
        throw error;
      }
      this.opened.set(key, source);
      this.forget(key);
      if (previous) {
        this.deps.logger.warn(
          { source: key, failedSince: new Date(previous.since).toISOString(), lastSequence: source.lastSequence },
          "replication hub opened the log of a source that had failed to open: serving it again",
        );
      }
      return source;
    } catch (error) {
      const failure = storeFailed(key, error);
      this.fail({ id, error: failure, listed: listed || previous?.listed === true }, previous);
      throw failure;
    }
  }

  private async stillListed(key: string): Promise<boolean> {
    return (await this.deps.store.list()).some((s) => sourceKey(s) === key);
  }

  /**
   * Records a failed open; logs it at error level the first time, and again only when the error changes (within the
   * hub-wide budget of {@link FailureLog}). A source the store did not list (a new id it refused) takes the place of
   * the one a publish hello named least recently once `maxFailed` are kept: callers can name any number of ids, and
   * each entry is listed in `/sources` and `/metrics`. Listed sources are never evicted: the store's files bound them, and the
   * entry is what keeps a retry from creating an empty log where a damaged one was.
   */
  private fail(f: { id: ReplicationSourceId; error: OmniRelayError; listed: boolean }, previous?: Failed): void {
    const now = this.deps.clock.now();
    const key = sourceKey(f.id);
    this.forget(key);
    this.failed.set(key, { ...f, since: previous?.since ?? now, lastAttemptAt: now });
    if (!f.listed) {
      this.unlistedFailed++;
      this.evictOverflow();
    }
    if (previous && previous.error.message === f.error.message) return;
    const cause = isOmniRelayError(f.error.cause) ? f.error.cause : undefined;
    this.failureLog.error(
      {
        source: key,
        code: f.error.code,
        message: f.error.message,
        ...(cause ? { cause: { code: cause.code, metadata: cause.metadata } } : {}),
      },
      "replication hub cannot open a source's log: its calls fail with this error until it opens; the other sources are served",
      f.listed,
    );
  }

  private forget(key: string): void {
    const entry = this.failed.get(key);
    if (!entry) return;
    this.failed.delete(key);
    if (!entry.listed) this.unlistedFailed--;
  }

  private evictOverflow(): void {
    if (this.unlistedFailed <= this.deps.maxFailed) return;
    for (const [key, entry] of this.failed) {
      if (entry.listed) continue;
      this.forget(key);
      this.evictedCount++;
      if (this.unlistedFailed <= this.deps.maxFailed) return;
    }
  }
}

function storeFailed(key: string, error: unknown): OmniRelayError {
  if (isOmniRelayError(error) && error.code === ErrorCodes.replicationHub.storeFailed) return error;
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.replicationHub.storeFailed,
    message: `Cannot open the log of ${key}: ${error instanceof Error ? error.message : String(error)}`,
    metadata: { "replication.source": key },
    cause: error,
  });
}

function gone(key: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.replicationHub.storeFailed,
    message:
      `Cannot open the log of ${key}: it failed to open and is no longer in the store. Put the repaired or restored ` +
      "file back; to start the source afresh on purpose, remove its files and restart the hub.",
    metadata: { "replication.source": key },
  });
}

function failedStatus(f: Failed): ReplicationHubSourceStatus {
  const causeCode = isOmniRelayError(f.error.cause) ? f.error.cause.code : undefined;
  return {
    nodeId: f.id.nodeId,
    shard: f.id.shard,
    lastSequence: 0,
    headSequence: 0,
    lag: 0,
    connected: false,
    storedEvents: 0,
    duplicateEvents: 0,
    conflicts: 0,
    busyRefusals: 0,
    sinkFailures: 0,
    lastAppendAt: 0,
    failed: {
      code: f.error.code,
      ...(causeCode ? { causeCode } : {}),
      message: f.error.message,
      since: f.since,
      lastAttemptAt: f.lastAttemptAt,
    },
  };
}
