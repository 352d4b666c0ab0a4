import type { ChannelCredentials, ClientDuplexStream } from "@grpc/grpc-js";
import {
  type CallOptions,
  type Clock,
  ErrorCodes,
  type LifecycleState,
  type Logger,
  OmniRelayError,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
  silentLogger,
  systemClock,
  type TimerHandle,
} from "@omnirelay/core";
import {
  BasicPeer,
  FewestPendingPeerChooser,
  type PeerChooser,
  PeerList,
  RoundRobinPeerChooser,
} from "@omnirelay/core/peers";
import { contiguous, readBackfill } from "./backfill.js";
import {
  type GrpcResourceLeaseReplicatorOptions,
  type ResolvedClientOptions,
  resolveClientOptions,
} from "./client-options.js";
import { hubChannelCredentials, hubChannelOptions } from "./credentials.js";
import { cancelled, closedError } from "./errors.js";
import {
  type PublishAck,
  type PublishRequest,
  type ReplicationEvent,
  ReplicationHubClient,
} from "./gen/omnirelay/replication/v1/hub.js";
import { Outbox } from "./outbox.js";
import { fromServiceError, toWireEvent } from "./wire.js";

/** Where a {@link GrpcResourceLeaseReplicator} stands: its lag, outbox and connection. */
export interface GrpcReplicatorLag {
  /** Highest sequence number handed to `publish`. */
  readonly headSequence: number;
  /** Highest sequence number the hub acknowledged. */
  readonly ackedSequence: number;
  /** Unacknowledged events (`headSequence - ackedSequence` when the stream has no holes): the lag metric. */
  readonly pendingEvents: number;
  /** `'lag'` mode: the outbox passed `maxOutboxEvents` and has not drained to half of it yet. */
  readonly lagging: boolean;
  /** The hub of the open stream, `undefined` while disconnected. */
  readonly hub: string | undefined;
  /** Streams opened (hello acknowledged) since creation. */
  readonly connects: number;
  /** The last stream failure, if any. */
  readonly lastError: OmniRelayError | undefined;
}

/**
 * Streams a dispatcher's replication events to a replication hub over one bidirectional gRPC stream. `publish`
 * resolves when the hub has acknowledged (stored) the events, so this replicator can be one of a
 * `CompositeResourceLeaseReplicator`'s or a sink fed after the local SQLite commit. It keeps a bounded outbox of
 * unacknowledged events, reconnects with backoff (to another hub when one fails), and on every connection resumes
 * from the hub's acknowledged sequence: the hub never sees a reordered, dropped or duplicated event.
 */
export class GrpcResourceLeaseReplicator implements ResourceLeaseReplicator, AsyncDisposable {
  private readonly settings: ResolvedClientOptions;
  private readonly options: GrpcResourceLeaseReplicatorOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly credentials: ChannelCredentials;
  private readonly outbox: Outbox;
  private readonly peers: PeerList;
  private readonly chooser: PeerChooser;
  private readonly anyChooser: PeerChooser;
  private readonly unhealthyUntil = new Map<string, number>();
  private current: LifecycleState = "idle";
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopSession: ((error: OmniRelayError) => void) | undefined;
  private hub: string | undefined;
  private connects = 0;
  private lastError: OmniRelayError | undefined;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: GrpcResourceLeaseReplicatorOptions) {
    this.settings = resolveClientOptions(options);
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
    this.credentials = options.credentials ?? hubChannelCredentials(options.tls);
    this.outbox = new Outbox(
      {
        max: this.settings.maxOutboxEvents,
        hardCap: this.settings.hardCapEvents,
        overflow: this.settings.overflow,
      },
      () => this.wake?.(),
    );
    this.peers = new PeerList(this.settings.hubs.map((id) => new BasicPeer({ id, address: id })));
    const health = {
      snapshot: () => [],
      isPeerEligible: (id: string) => this.clock.now() >= (this.unhealthyUntil.get(id) ?? 0),
    };
    const Chooser = options.chooser === "fewest-pending" ? FewestPendingPeerChooser : RoundRobinPeerChooser;
    this.chooser = new Chooser({ peers: this.peers, health, clock: this.clock, random: this.random });
    this.anyChooser = new RoundRobinPeerChooser({ peers: this.peers, clock: this.clock });
  }

  /**
   * Current lifecycle state: `idle` until `start()` or the first `publish`, `running`, then `stopped` after `close()`.
   * (`start()` is synchronous and `close()` drops the stream at once, so it is never `starting` or `draining`; call
   * `flush()` before `close()` to let the outbox drain.)
   */
  get state(): LifecycleState {
    return this.current;
  }

  /** Lag and connection state (the lag metric is `pendingEvents`). */
  lag(): GrpcReplicatorLag {
    return {
      headSequence: this.outbox.head,
      ackedSequence: this.outbox.acked,
      pendingEvents: this.outbox.pending,
      lagging: this.outbox.lagging,
      hub: this.hub,
      connects: this.connects,
      lastError: this.lastError,
    };
  }

  /** Starts connecting to a hub (the first `publish` does this too). Idempotent. */
  start(): void {
    if (this.current !== "idle") return;
    this.current = "running";
    this.loop = this.run();
  }

  /**
   * Queues `events` (strictly increasing sequence numbers, after every earlier publish) and resolves once the hub has
   * stored them. Aborting `signal` rejects this call only: the events are already part of the ordered stream and
   * are still delivered.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.out_of_order`; resource-exhausted
   *   `resourcelease.replication.grpc.outbox_full` (`'lag'` mode, at the hard cap); unavailable
   *   `resourcelease.replication.grpc.closed`; cancelled `resourcelease.cancelled`.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (this.current === "stopped") return Promise.reject(closedError("gRPC replicator"));
    if (options.signal?.aborted) return Promise.reject(cancelled(options.signal.reason));
    if (events.length === 0) return Promise.resolve();
    let acked: Promise<void>;
    try {
      acked = this.outbox.offer(events);
    } catch (error) {
      return Promise.reject(error);
    }
    this.start();
    const signal = options.signal;
    if (!signal) return acked;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(cancelled(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      acked.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Resolves when every event published so far is acknowledged by the hub. */
  flush(options: CallOptions = {}): Promise<void> {
    const drained = this.outbox.drained();
    const signal = options.signal;
    if (!signal) return drained;
    if (signal.aborted) return Promise.reject(cancelled(signal.reason));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(cancelled(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      drained.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /**
   * Closes the stream and stops reconnecting. Publishes not yet acknowledged reject with
   * `resourcelease.replication.grpc.closed` (call `flush()` first to wait for them). Idempotent.
   */
  async close(): Promise<void> {
    if (this.current === "stopped") return;
    this.current = "stopped";
    const error = closedError("gRPC replicator");
    this.stopSession?.(error);
    this.wake?.();
    this.outbox.failAll(error);
    await this.loop;
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.current === "running") {
      const lease = await this.chooser
        .acquire()
        .catch(() => this.anyChooser.acquire())
        .catch(() => undefined);
      if (!lease) break;
      const address = lease.peer.address ?? lease.peer.id;
      let opened = false;
      try {
        opened = await this.session(address);
        lease.release(true);
      } catch (error) {
        const e = fromServiceError(error);
        opened = e.metadata["replication.opened"] === "true";
        lease.release(false);
        if (this.current !== "running") break;
        this.lastError = e;
        this.unhealthyUntil.set(address, this.clock.now() + this.settings.unhealthyCooldownMs);
        this.logger.warn({ hub: address, code: e.code, error: e.message }, "replication hub stream failed");
      }
      failures = opened ? 1 : failures + 1;
      if (this.current !== "running") break;
      const base = Math.min(
        this.settings.reconnectMaxDelayMs,
        this.settings.reconnectInitialDelayMs * 2 ** Math.min(20, failures - 1),
      );
      await this.sleep(base / 2 + (base / 2) * this.random());
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        if (this.current === "running") return;
        this.clock.clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** One stream: hello, resume from the hub's checkpoint, send, take acks. Resolves only when the client closes. */
  private session(address: string): Promise<boolean> {
    const client = new ReplicationHubClient(address, this.credentials, hubChannelOptions(this.options.tls));
    const call: ClientDuplexStream<PublishRequest, PublishAck> = client.publish();
    const s = this.settings;
    let opened = false;
    let sent = 0;
    let hubAcked = 0;
    let outstandingSince = 0;
    let pumping = false;
    let failed = false;
    let timer: TimerHandle | undefined;
    const startedAt = this.clock.now();
    return new Promise<boolean>((resolve, reject) => {
      const finish = (error: OmniRelayError | undefined): void => {
        if (failed) return;
        failed = true;
        if (timer !== undefined) this.clock.clearTimeout(timer);
        this.wake = undefined;
        this.stopSession = undefined;
        this.hub = undefined;
        call.removeAllListeners("data");
        call.on("error", () => undefined);
        call.cancel();
        client.close();
        if (error === undefined || this.current !== "running") resolve(opened);
        else {
          reject(
            new OmniRelayError({
              status: error.status,
              code: error.code,
              message: error.message,
              metadata: { ...error.metadata, "replication.opened": String(opened) },
              cause: error,
            }),
          );
        }
      };
      const timeout = (message: string) =>
        finish(
          new OmniRelayError({
            status: "deadline-exceeded",
            code: ErrorCodes.replicationHub.ackTimeout,
            message,
            metadata: { "replication.hub": address },
          }),
        );
      const check = (): void => {
        if (failed) return;
        const now = this.clock.now();
        if (!opened && now - startedAt >= s.connectTimeoutMs) {
          timeout(`Hub ${address} did not answer the hello within ${s.connectTimeoutMs} ms.`);
          return;
        }
        if (opened && sent > hubAcked && now - outstandingSince >= s.ackTimeoutMs) {
          timeout(`Hub ${address} acknowledged nothing for ${s.ackTimeoutMs} ms.`);
          return;
        }
        timer = this.clock.setTimeout(check, Math.max(10, Math.min(s.connectTimeoutMs, s.ackTimeoutMs) / 4));
      };
      const pump = async (): Promise<void> => {
        if (pumping || !opened || failed) return;
        pumping = true;
        try {
          while (!failed) {
            if (sent < hubAcked) sent = hubAcked;
            let batch = this.outbox.after(sent, s.maxBatchEvents);
            const first = batch[0];
            if (!first) break;
            if (first.sequenceNumber > sent + 1) {
              const to = Math.min(first.sequenceNumber - 1, sent + s.maxBatchEvents);
              batch = await readBackfill(this.options.backfill, sent + 1, to);
              if (failed) break;
            } else {
              batch = contiguous(batch, sent);
            }
            const wire: ReplicationEvent[] = batch.map(toWireEvent);
            if (sent <= hubAcked) outstandingSince = this.clock.now();
            sent = batch.at(-1)!.sequenceNumber;
            const ok = call.write({ batch: { events: wire, headSequence: this.outbox.head } });
            if (!ok) await new Promise<void>((r) => call.once("drain", r));
          }
        } catch (error) {
          finish(fromServiceError(error));
        } finally {
          pumping = false;
        }
      };
      call.on("data", (ack: PublishAck) => {
        if (!opened) {
          opened = true;
          this.connects++;
          this.hub = address;
          this.unhealthyUntil.delete(address);
          // Resume after the hub's checkpoint, except that events we still hold at or below it are sent again: the
          // hub acknowledges a re-sent event only if it equals the one it stored, so events someone else stored under
          // our numbers surface as a conflict instead of being acknowledged unseen.
          const held = this.outbox.after(this.outbox.acked, 1)[0]?.sequenceNumber;
          sent = held !== undefined && held <= ack.ackedSequence ? held - 1 : ack.ackedSequence;
          hubAcked = sent;
          this.outbox.ack(sent);
          void pump();
          return;
        }
        // The hub's checkpoint may be behind what an earlier hub acknowledged (another hub, a restored backup):
        // resume from the hub's own number, backfilling what the outbox no longer holds.
        if (ack.ackedSequence > hubAcked) outstandingSince = this.clock.now();
        hubAcked = Math.max(hubAcked, ack.ackedSequence);
        this.outbox.ack(ack.ackedSequence);
        void pump();
      });
      call.on("error", (error) => finish(fromServiceError(error)));
      call.on("end", () =>
        finish(
          new OmniRelayError({
            status: "unavailable",
            code: ErrorCodes.replicationHub.unavailable,
            message: `Hub ${address} ended the publish stream.`,
          }),
        ),
      );
      this.stopSession = (error) => finish(error);
      this.wake = () => void pump();
      timer = this.clock.setTimeout(check, Math.max(10, Math.min(s.connectTimeoutMs, s.ackTimeoutMs) / 4));
      call.write({ hello: { nodeId: s.nodeId, shard: s.shard, headSequence: this.outbox.head } });
    });
  }
}
