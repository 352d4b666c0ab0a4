import type { ChannelCredentials, ClientReadableStream } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import {
  checkClientTls,
  hubChannelCredentials,
  hubChannelOptions,
  type ReplicationHubClientTlsOptions,
} from "./credentials.js";
import { cancelled } from "./errors.js";
import { type ReplicationEvent, ReplicationHubClient, type SourceStatus } from "./gen/omnirelay/replication/v1/hub.js";
import type { ReplicationHubSourceFailure } from "./hub-source.js";
import type { ReplicationSourceId } from "./source.js";
import { fromServiceError, fromWireEvent } from "./wire.js";

/** Options of a {@link GrpcReplicationHubClient}. */
export interface GrpcReplicationHubClientOptions {
  /** The hub's address, `host:port`. Required. */
  readonly address: string;
  /** TLS towards the hub; plaintext without it. */
  readonly tls?: ReplicationHubClientTlsOptions;
  /** Ready-made channel credentials; override `tls` (its `bearerToken` too). */
  readonly credentials?: ChannelCredentials;
  /** Deadline of each unary call (checkpoint, sources, health). @defaultValue 5000 */
  readonly deadlineMs?: number;
}

/** A source's status as the hub reports it over gRPC. */
export interface ReplicationHubSourceSummary extends ReplicationSourceId {
  readonly lastSequence: number;
  readonly headSequence: number;
  readonly lag: number;
  readonly connected: boolean;
  /**
   * Set when the hub could not open the source's log (listed by `sources()` only: `checkpoint()` of such a source
   * rejects with the open error). The numbers above are then 0.
   */
  readonly failed?: ReplicationHubSourceFailure;
}

/** Options of {@link GrpcReplicationHubClient.subscribe}. */
export interface ReplicationHubSubscribeOptions {
  readonly source: ReplicationSourceId;
  /** First sequence number to read. @defaultValue 1 */
  readonly fromSequence?: number;
  /** Keep following new events after the stored ones. @defaultValue true */
  readonly follow?: boolean;
  /** Ends the subscription. */
  readonly signal?: AbortSignal;
}

/**
 * Reads from a replication hub: a source's stream from a sequence number, live (another hub, a governance feed, a
 * standby region), its checkpoint, the list of sources, and the hub's health.
 */
export class GrpcReplicationHubClient implements AsyncDisposable {
  private readonly client: ReplicationHubClient;
  private readonly deadlineMs: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: GrpcReplicationHubClientOptions) {
    if (typeof options?.address !== "string" || !/^.+:\d{1,5}$/.test(options.address))
      throw OmniRelayError.invalidOption("address");
    const deadlineMs = integerOption("deadlineMs", options.deadlineMs, { min: 1, fallback: 5000 });
    checkClientTls(options.tls);
    this.deadlineMs = deadlineMs;
    this.client = new ReplicationHubClient(
      options.address,
      options.credentials ?? hubChannelCredentials(options.tls),
      hubChannelOptions(options.tls),
    );
  }

  /**
   * Events of `source` from `fromSequence` on, in order; with `follow` the iteration waits for new ones until
   * `signal` aborts (it then ends without error).
   * @throws OmniRelayError not-found `resourcelease.replication.grpc.source_not_found`; unavailable when the hub
   *   cannot be reached; invalid-argument for a bad source.
   */
  async *subscribe(options: ReplicationHubSubscribeOptions): AsyncGenerator<ResourceLeaseReplicationEvent> {
    const { source, fromSequence = 1, follow = true, signal } = options;
    if (signal?.aborted) return;
    const call: ClientReadableStream<ReplicationEvent> = this.client.subscribe({
      nodeId: source.nodeId,
      shard: source.shard,
      fromSequence,
      follow,
    });
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const wire of call as AsyncIterable<ReplicationEvent>) yield fromWireEvent(wire);
    } catch (error) {
      if (signal?.aborted) return;
      throw fromServiceError(error);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /**
   * The hub's checkpoint and lag for `source`.
   * @throws OmniRelayError not-found `resourcelease.replication.grpc.source_not_found`; unavailable
   *   `resourcelease.replication.grpc.store_failed` when the hub could not open the source's log; deadline-exceeded.
   */
  async checkpoint(
    source: ReplicationSourceId,
    options: { signal?: AbortSignal } = {},
  ): Promise<ReplicationHubSourceSummary> {
    const res = await this.unary<SourceStatus>(options.signal, (meta, opts, cb) =>
      this.client.checkpoint({ nodeId: source.nodeId, shard: source.shard }, meta, opts, cb),
    );
    return toSummary(res);
  }

  /**
   * Every source the hub has a log for (that the caller may read or publish), including those whose log failed to
   * open (`failed` set). @throws OmniRelayError unavailable; deadline-exceeded.
   */
  async sources(options: { signal?: AbortSignal } = {}): Promise<readonly ReplicationHubSourceSummary[]> {
    const res = await this.unary<{ sources: SourceStatus[] }>(options.signal, (meta, opts, cb) =>
      this.client.listSources({}, meta, opts, cb),
    );
    return res.sources.map(toSummary);
  }

  /** Whether the hub serves. @throws OmniRelayError unavailable; deadline-exceeded. */
  async health(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const res = await this.unary<{ serving: boolean }>(options.signal, (meta, opts, cb) =>
      this.client.health({}, meta, opts, cb),
    );
    return res.serving;
  }

  /** Closes the channel. */
  close(): void {
    this.client.close();
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  private unary<T>(
    signal: AbortSignal | undefined,
    start: (meta: Metadata, opts: { deadline: Date }, cb: (error: unknown, res: T) => void) => { cancel(): void },
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(cancelled(signal.reason));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = start(new Metadata(), { deadline: new Date(Date.now() + this.deadlineMs) }, (error, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(signal?.aborted ? cancelled(signal.reason) : fromServiceError(error));
        else resolve(res);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function toSummary(s: SourceStatus): ReplicationHubSourceSummary {
  const summary = {
    nodeId: s.nodeId,
    shard: s.shard,
    lastSequence: s.lastSequence,
    headSequence: s.headSequence,
    lag: s.lag,
    connected: s.connected,
  };
  const f = s.failed;
  if (!f) return summary;
  const failed: ReplicationHubSourceFailure = {
    code: f.code,
    ...(f.causeCode ? { causeCode: f.causeCode } : {}),
    message: f.message,
    since: f.since,
    lastAttemptAt: f.lastAttemptAt,
  };
  return { ...summary, failed };
}
