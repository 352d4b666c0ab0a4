import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import {
  type CallOptions,
  ErrorCodes,
  OmniRelayError,
  type ResourceLeaseEventLog,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
} from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { type AppendRetry, publishWithRetry } from "./append-retry.js";
import { describeLog, type JetStreamEventLogDescription, type JetStreamEventLogStats } from "./describe.js";
import { appendError, closedError, faultedError, sequenceGapError, unavailableError } from "./errors.js";
import { FRAME_FORMAT, FrameHeaders, frameBatch, markerFrame, type OwnerMarker } from "./frames.js";
import { type JetStreamEventLogOptions, type ResolvedEventLogOptions, resolveEventLogOptions } from "./options.js";
import { ensureStream, firstEvent, purgeBefore, readEvents, type StreamAccess } from "./stream.js";
import { recoverTail } from "./tail.js";

/** Bytes of a message kept free for its headers: a part's body is at most the server's max payload less this. */
const HEADER_ROOM = 1024;

interface Pending {
  readonly texts: readonly string[];
  readonly first: number;
  readonly last: number;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const encoder = new TextEncoder();

/**
 * A shard's event log on NATS JetStream: a {@link ResourceLeaseReplicator} that appends the queue's events to the
 * shard's own subject (`<subjectPrefix>.<shard>`) of one stream, and a {@link ResourceLeaseEventLog} that reads them
 * back. Every append carries `Nats-Expected-Last-Subject-Sequence`, so a stale writer (another instance appended to
 * the shard since this one last did) is refused by the stream itself, and the log is then faulted. Publishes that
 * arrive while an append is in flight are sent together as one message (a group commit, which lands whole or not at
 * all); a batch larger than the server's max payload is split into parts (see the README). A publish resolves only
 * after JetStream acknowledged every message holding its events — which is before the server fsyncs them.
 */
export class JetStreamResourceLeaseEventLog implements ResourceLeaseReplicator, ResourceLeaseEventLog, AsyncDisposable {
  /** The shard's subject. */
  readonly subject: string;
  /** The shard. */
  readonly shard: string;
  private readonly access: StreamAccess;
  private readonly connection: NatsConnection;
  private readonly ownsConnection: boolean;
  private readonly settings: ResolvedEventLogOptions;
  private readonly maxBody: number;
  private readonly replicas: number;
  private lastEvent: number;
  private accepted: number;
  private lastSubjectSequence: number;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private fault: OmniRelayError | undefined;
  private closed = false;
  private appendedMessages = 0;
  private appendedEvents = 0;
  private ownerEpoch: number | undefined;
  /** This open's id in message ids: a resend of its message is a duplicate, another writer's never is. */
  private readonly writerId = randomBytes(8).toString("hex");
  private readonly retry: AppendRetry;

  private constructor(
    access: StreamAccess,
    connection: { readonly nc: NatsConnection; readonly owned: boolean },
    init: { readonly lastEvent: number; readonly lastSubjectSequence: number; readonly replicas: number },
  ) {
    this.access = access;
    this.settings = access.settings;
    this.subject = access.settings.subject;
    this.shard = access.settings.shard;
    this.connection = connection.nc;
    this.ownsConnection = connection.owned;
    this.lastEvent = init.lastEvent;
    this.accepted = init.lastEvent;
    this.lastSubjectSequence = init.lastSubjectSequence;
    this.replicas = init.replicas;
    this.retry = { timeoutMs: this.settings.appendTimeoutMs, retryMs: this.settings.appendRetryMs };
    this.maxBody = Math.max(4096, (connection.nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM);
  }

  /**
   * Connects (unless given a connection), creates the stream when it is absent, and recovers where the shard's
   * subject ends: its last stream sequence (what the next append expects) and its last event's sequence number. A
   * batch whose parts stop before its last one (its writer stopped between parts) does not count: its publish never
   * resolved, and the next batch is numbered from its first event. The last message is checked first (a few direct
   * gets, never a read of the whole subject): a batch must hold the events its headers announce and number on from
   * the message before it, a part must follow the parts before it, and an owner-epoch marker must follow the events
   * before it — so a copy of an earlier message published at the tail is refused instead of letting the next append
   * number over events the subject holds.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; unavailable
   *   `resourcelease.jetstream.unavailable` when NATS or JetStream cannot be reached; data-loss
   *   `resourcelease.jetstream.corrupt` when the subject's last message is not one this log wrote or does not
   *   continue the message before it.
   */
  static async open(options: JetStreamEventLogOptions): Promise<JetStreamResourceLeaseEventLog> {
    const settings = resolveEventLogOptions(options);
    let nc = settings.connection;
    if (nc === undefined) {
      try {
        nc = await connect({ servers: [...settings.servers] });
      } catch (error) {
        throw unavailableError(error, settings.stream, "connect to NATS for");
      }
    }
    const owned = settings.connection === undefined;
    try {
      const jsm = await jetstreamManager(nc, { timeout: settings.appendTimeoutMs });
      const access: StreamAccess = { js: jetstream(nc, { timeout: settings.appendTimeoutMs }), jsm, settings };
      const info = await ensureStream(access);
      const { lastEvent, lastSubjectSequence } = await recoverTail(access);
      return new JetStreamResourceLeaseEventLog(
        access,
        { nc, owned },
        { lastEvent, lastSubjectSequence, replicas: info.config.num_replicas },
      );
    } catch (error) {
      if (owned) await nc.close().catch(() => undefined);
      throw unavailableError(error, settings.stream, "open");
    }
  }

  /**
   * Appends `events` (which must continue at exactly the last sequence + 1, in order) and resolves once JetStream
   * acknowledged the message(s) holding them: stored by the stream's leader and, at R3, by a quorum — in the OS's page
   * cache, not yet fsync'd (see the README).
   * @throws OmniRelayError failed-precondition `resourcelease.jetstream.sequence_gap` (nothing sent);
   *   failed-precondition `resourcelease.jetstream.append_refused` when another writer appended to the shard
   *   (faults the log); unavailable `resourcelease.jetstream.append_failed` when an append was not acknowledged
   *   (faults the log); unavailable `resourcelease.jetstream.closed`; cancelled `resourcelease.cancelled` when
   *   `signal` is already aborted (nothing sent).
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.fault) return Promise.reject(faultedError(this.fault, events[0]?.sequenceNumber));
    if (options.signal?.aborted) {
      return Promise.reject(
        new OmniRelayError({
          status: "cancelled",
          code: ErrorCodes.resourceLease.cancelled,
          message: "The publish was cancelled.",
          cause: options.signal.reason,
        }),
      );
    }
    if (events.length === 0) return Promise.resolve();
    const texts: string[] = [];
    let bytes = 0;
    let expected = this.accepted + 1;
    for (const event of events) {
      // Past 2^53 - 1 the next number is not exact (2^53 + 1 === 2^53): refuse, rather than store a message whose
      // headers no reader accepts (a subject whose last message claims event 2^53 - 1 would otherwise brick the log).
      if (event?.sequenceNumber !== expected || !Number.isSafeInteger(expected)) {
        return Promise.reject(sequenceGapError(event?.sequenceNumber, expected));
      }
      let text: string;
      try {
        text = JSON.stringify(encodeReplicationEvent(event));
      } catch (error) {
        return Promise.reject(error);
      }
      texts.push(text);
      bytes += encoder.encode(text).length + 1;
      expected++;
    }
    const first = this.accepted + 1;
    this.accepted = expected - 1;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ texts, first, last: expected - 1, bytes, resolve, reject });
      // A microtask later, so that publishes made in one synchronous run go out as one message.
      this.flushing ??= Promise.resolve().then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.fault === undefined) {
        const group = this.takeGroup();
        try {
          await this.append(group);
        } catch (error) {
          this.fault = OmniRelayError.from(error);
          for (const pending of group) pending.reject(this.fault);
          break;
        }
        for (const pending of group) pending.resolve();
      }
      for (const pending of this.queue.splice(0)) {
        pending.reject(this.fault ? faultedError(this.fault, pending.first) : closedError());
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** The next group commit: the oldest publish, and the ones after it that still fit in one message. */
  private takeGroup(): Pending[] {
    let size = 2;
    let count = 0;
    for (const pending of this.queue) {
      if (count > 0 && size + pending.bytes > this.maxBody) break;
      size += pending.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async append(group: readonly Pending[]): Promise<void> {
    const first = (group[0] as Pending).first;
    const last = (group.at(-1) as Pending).last;
    const frames = frameBatch(
      group.flatMap((p) => p.texts),
      { first, last },
      this.maxBody,
    );
    let batchStart = 0;
    for (const frame of frames) {
      const h = headers();
      h.set(FrameHeaders.format, FRAME_FORMAT);
      h.set(FrameHeaders.first, String(frame.first));
      h.set(FrameHeaders.last, String(frame.last));
      h.set(FrameHeaders.part, `${frame.part}/${frame.parts}`);
      if (frame.part > 1) h.set(FrameHeaders.batchStart, String(batchStart));
      const expectedLastSubjectSequence = this.lastSubjectSequence;
      try {
        const ack = await publishWithRetry(
          this.access.js,
          {
            subject: this.subject,
            body: frame.body,
            headers: h,
            expectedLastSubjectSequence,
            msgId: `${this.writerId}:${frame.first}:${frame.part}`,
          },
          this.retry,
        );
        this.lastSubjectSequence = ack.seq;
        if (frame.part === 1) batchStart = ack.seq;
      } catch (error) {
        throw appendError(error, { subject: this.subject, expectedLastSubjectSequence, firstEvent: first });
      }
      this.appendedMessages++;
    }
    this.lastEvent = last;
    this.appendedEvents += last - first + 1;
  }

  /**
   * Appends an owner-epoch marker after the last acknowledged event: a message without events (readers and the queue
   * skip it) that records a new owner in the log. Like any append it expects the subject's last sequence, so it is
   * refused when another writer appended since this log opened — and once it is stored, every append of an earlier
   * owner (which expects the sequence before it) is refused. A new owner appends it before it serves. Publishes made
   * meanwhile wait for it.
   * @throws OmniRelayError failed-precondition `resourcelease.jetstream.append_refused` (the log is faulted; reopen
   *   it and try again); unavailable `resourcelease.jetstream.append_failed`, `resourcelease.jetstream.closed`.
   */
  async appendOwnerMarker(marker: OwnerMarker): Promise<number> {
    if (this.closed) throw closedError();
    while (this.flushing) await this.flushing;
    if (this.fault) throw faultedError(this.fault, undefined);
    const run = this.appendMarker(marker);
    this.flushing = run.then(
      () => this.resume(),
      () => this.resume(),
    );
    return run;
  }

  private resume(): void {
    this.flushing = this.queue.length > 0 ? Promise.resolve().then(() => this.flush()) : undefined;
  }

  private async appendMarker(marker: OwnerMarker): Promise<number> {
    const frame = markerFrame(marker, this.lastEvent);
    const h = headers();
    for (const [name, value] of frame.headers) h.set(name, value);
    const expectedLastSubjectSequence = this.lastSubjectSequence;
    try {
      const msgId = `${this.writerId}:owner:${marker.epoch}`;
      const message = { subject: this.subject, body: frame.body, headers: h, expectedLastSubjectSequence, msgId };
      const ack = await publishWithRetry(this.access.js, message, this.retry);
      this.lastSubjectSequence = ack.seq;
      this.ownerEpoch = marker.epoch;
      this.appendedMessages++;
      return ack.seq;
    } catch (error) {
      const context = { subject: this.subject, expectedLastSubjectSequence, firstEvent: this.lastEvent + 1 };
      this.fault = appendError(error, context);
      throw this.fault;
    }
  }

  /**
   * Reads stored events with `sequenceNumber >= fromSequence` in order, at most `limit`: what the subject holds
   * when the read starts (a batch whose parts stop before its last one is skipped).
   * @throws OmniRelayError invalid-argument `resourcelease.argument.invalid` for a bad limit (synchronously); while
   *   iterating, data-loss `resourcelease.jetstream.corrupt` at a message that does not decode or does not continue
   *   the events before it; unavailable `resourcelease.jetstream.unavailable` or `resourcelease.jetstream.closed`.
   */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: "limit must be an integer >= 0.",
        metadata: { field: "limit" },
      });
    }
    const from = Math.max(1, Math.floor(fromSequence));
    const isClosed = () => this.closed;
    const access = this.access;
    return (async function* () {
      if (isClosed()) throw closedError();
      yield* readEvents(access, from, limit ?? Number.POSITIVE_INFINITY);
    })();
  }

  /**
   * Removes the messages of the shard's subject that hold only events before `fromEvent` (clamped to the last
   * acknowledged event, so the newest batch always stays): storage stays bounded once a snapshot covers them. A read
   * from an earlier sequence then starts at the first event kept. Returns how many messages were removed.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable` or `resourcelease.jetstream.closed`.
   */
  async trimBefore(fromEvent: number): Promise<number> {
    if (this.closed) throw closedError();
    const from = Math.min(Math.floor(fromEvent), this.lastEvent);
    if (!(from > 1)) return 0;
    return purgeBefore(this.access, from, this.lastSubjectSequence);
  }

  /** Sequence number of the first event the shard's subject holds (1 unless trimmed), or 0 when it holds none. */
  async firstSequence(): Promise<number> {
    if (this.closed) throw closedError();
    return (await firstEvent(this.access)) ?? 0;
  }

  /** The NATS connection the log uses: the one it was given, or its own (closed with the log). */
  get natsConnection(): NatsConnection {
    return this.connection;
  }

  /** Sequence number of the last acknowledged event (recovered at open), 0 when the log is empty. */
  async lastSequence(): Promise<number> {
    return this.lastEvent;
  }

  /** Counters and settings, for diagnostics. */
  stats(): JetStreamEventLogStats {
    return {
      stream: this.settings.stream,
      subject: this.subject,
      replicas: this.replicas,
      serverVersion: this.connection.info?.version ?? "unknown",
      maxMessageBytes: this.maxBody,
      lastSequence: this.lastEvent,
      lastAcceptedSequence: this.accepted,
      lastSubjectSequence: this.lastSubjectSequence,
      appendedMessages: this.appendedMessages,
      appendedEvents: this.appendedEvents,
      ownerEpoch: this.ownerEpoch,
      fault: this.fault && { code: this.fault.code, message: this.fault.message },
    };
  }

  /**
   * Describes the server and stream for diagnostics: server version and name, the stream's replicas and Raft group,
   * and whether the server fsyncs every write before acknowledging it (from `/varz` when `monitorUrl` was given,
   * else from the server's version: before 2.10 never — it syncs every 2 minutes).
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable` when the stream cannot be read.
   */
  async describe(): Promise<JetStreamEventLogDescription> {
    return describeLog(this.access, this.connection);
  }

  /**
   * Refuses new publishes, waits for the appends already accepted (they resolve or reject), and closes the
   * connection when the log opened it. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    if (this.ownsConnection) await this.connection.close().catch(() => undefined);
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
