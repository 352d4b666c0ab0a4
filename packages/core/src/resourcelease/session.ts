import type { ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import type { RequestMeta } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseCallContext } from "../queue/types.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import {
  type SessionClientFrame,
  type SessionFailOp,
  type SessionResult,
  type SessionTokenOp,
  sessionErrorFrame,
} from "./session-messages.js";
import type { SessionHost, SessionLimits, SessionSink } from "./session-open.js";

/** How long a session waits between lease calls on a queue whose `maxWaitMs` is 0 (it cannot long-poll). */
const NO_LONG_POLL_RETRY_MS = 50;

/**
 * The dispatcher's side of one worker session: holds the worker's credit and pushes grants as items become
 * available (a long-poll lease of the queue for up to the credit, again and again), applies settlements in frame
 * order and answers each by id. A session that ends (stream broken, error, dispatcher stopping) only stops pushing:
 * grants it sent stay leased to the worker (renewed by its next session or unary heartbeats, or they expire), and a
 * grant committed but not yet sent goes straight back to the queue. Internal: transports create it through
 * {@link openResourceLeaseSession}.
 */
export class ResourceLeaseSession {
  private readonly host: SessionHost;
  private readonly context: ResourceLeaseCallContext;
  private readonly sink: SessionSink;
  private readonly maxCredit: number;
  private readonly idleTimeoutMs: number;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  /** The signal of the session's lease calls: aborted when the session ends or the worker stops it. */
  private readonly granting = new AbortController();
  /** The worker sent `stop`: nothing more is granted. */
  private stopping = false;
  private credit = 0;
  /** A lease call (or an ejection's sleep) is waiting for grants; at most one at a time. */
  private waiting = false;
  /** Grants chosen for the session and not yet sent (committing): they count against `maxCredit` as credit does. */
  private committing = 0;
  /** Settles when the last lease call's grants were sent (never rejects). */
  private sending: Promise<unknown> = Promise.resolve();
  private open = true;
  private idleTimer: TimerHandle | undefined;
  /** Frames whose settlements are being applied, not yet answered. */
  private settling = 0;
  /** The worker half-closed (see `finish`): the session ends once `settling` is 0. */
  private finishing = false;
  /** Ends the session when its credential expires (see `armExpiry`). */
  private expiryTimer: TimerHandle | undefined;

  constructor(options: { host: SessionHost; meta: RequestMeta; sink: SessionSink } & SessionLimits) {
    this.host = options.host;
    this.sink = options.sink;
    this.clock = options.host.engine.clock;
    this.maxCredit = options.maxCredit ?? 1000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    const context = this.host.context(options.meta);
    this.context = { ...context, signal: this.abort.signal };
    this.armIdle();
    if (options.meta.credentialExpiresAt !== undefined) this.armExpiry(options.meta.credentialExpiresAt);
  }

  /** The peer the session acts as. */
  get peerId(): string | undefined {
    return this.context.peerId;
  }

  /** A decoded frame from the worker. */
  receive(frame: SessionClientFrame): void {
    if (!this.open) return;
    this.armIdle();
    // After a stop, credit is ignored (a frame sent before the worker saw `stopped` may still carry some).
    const credit = this.stopping ? 0 : (frame.credit ?? 0);
    if (this.credit + this.committing + credit > this.maxCredit) {
      this.fail(
        new OmniRelayError({
          status: "resource-exhausted",
          code: ErrorCodes.rpc.sessionCreditExceeded,
          message: `A session holds at most ${this.maxCredit} credit.`,
          metadata: { limit: String(this.maxCredit) },
        }),
      );
      return;
    }
    const hasOps = Boolean(frame.complete?.length || frame.fail?.length || frame.heartbeat?.length);
    // Frames settle concurrently (results carry ids), so settlements of several frames share one log commit.
    if (hasOps) {
      this.settling++;
      this.settle(frame)
        .catch((error: unknown) => this.fail(error))
        .finally(() => this.settled());
    }
    if (frame.stop) this.stop();
    if (credit > 0) {
      this.credit += credit;
      if (this.host.tracker && this.context.peerId) this.host.tracker.recordPoll(this.context.peerId);
      this.pump();
    }
  }

  /**
   * The worker is leaving: drop its credit, end the waiting lease call (grants it chose and had not sent go back to the
   * queue, as at the end of a session), and answer `stopped` once the last grant this session sends has been sent.
   * Settlements go on until the worker closes the stream.
   */
  private stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.credit = 0;
    this.granting.abort(
      new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.sessionClosed,
        message: "The worker stopped the session's grants.",
      }),
    );
    void this.sending.then(() => {
      if (this.open) this.sink.send({ stopped: true });
    });
  }

  /**
   * The worker half-closed the stream: it sends nothing more and may still read. Nothing more is granted (as after a
   * `stop`, answered `stopped`), the settlements it sent are answered, then the session ends.
   */
  finish(): void {
    if (!this.open) return;
    if (this.settling === 0) {
      this.end();
      return;
    }
    this.finishing = true;
    this.stop();
  }

  /** A frame's settlements were answered (or the session failed): a finishing session ends after the last. */
  private settled(): void {
    this.settling--;
    if (this.finishing && this.settling === 0) this.end();
  }

  /** The transport heard from the worker (a ping answered): a liveness signal of its peer, like a poll. */
  alive(): void {
    if (this.open && this.host.tracker && this.context.peerId) this.host.tracker.recordPoll(this.context.peerId);
  }

  /**
   * The worker did not answer the transport's ping within `ms`: its link is down or it is frozen. Ends the session
   * (no more grants into it; the ones it holds stay leased until renewed or expired) and marks its peer disconnected.
   */
  unresponsive(ms: number): void {
    if (!this.open) return;
    this.cutOff(
      "session-unresponsive",
      new OmniRelayError({
        status: "deadline-exceeded",
        code: ErrorCodes.rpc.sessionIdle,
        message: `The worker did not answer a ping within ${ms} ms.`,
        metadata: { limitMs: String(ms), reason: "ping" },
      }),
    );
  }

  /**
   * The stream broke without the worker ending it (its connection dropped, its process died, or a keepalive ping went
   * unanswered): ends the session and marks its peer disconnected (`session-lost`), as an unanswered ping does. A
   * worker that ends its session itself (a WebSocket close frame, a half-closed gRPC stream) is not marked: its peer
   * stays healthy until the grace period passes without it. Leases are untouched either way.
   */
  lost(): void {
    this.cutOff("session-lost");
  }

  /** Marks the session's peer disconnected for `reason`, then ends the session (with `error`, when there is one). */
  private cutOff(reason: string, error?: OmniRelayError): void {
    if (!this.open) return;
    const peerId = this.context.peerId;
    if (this.host.tracker && peerId) this.host.tracker.recordDisconnect(peerId, reason);
    this.end(error);
  }

  /** Ends the session with `error` (sent first as an error frame). */
  fail(thrown: unknown): void {
    if (!this.open) return;
    const error = OmniRelayError.from(thrown);
    try {
      this.sink.send(sessionErrorFrame(error));
    } catch {
      // the stream is already gone
    }
    this.end(error);
  }

  /** The stream ended (or is being closed): stop pushing and waiting. Idempotent. */
  end(error?: OmniRelayError): void {
    if (!this.open) return;
    this.open = false;
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const reason =
      error ??
      new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.sessionClosed,
        message: "The session ended.",
      });
    this.abort.abort(reason);
    this.granting.abort(reason);
    this.sink.close(error);
  }

  /**
   * Ends the session when the credential it was opened with expires: the middleware ran once, at open, and a unary call
   * with the same token is refused from then on. A clock's timer may fire early (a real one caps its delay at ~24.8
   * days): it is armed again for what is left.
   */
  private armExpiry(expiresAt: number): void {
    const left = expiresAt - this.clock.now();
    if (left > 0) {
      this.expiryTimer = this.clock.setTimeout(() => this.armExpiry(expiresAt), left);
      return;
    }
    this.expiryTimer = undefined;
    this.fail(
      new OmniRelayError({
        status: "unauthenticated",
        code: ErrorCodes.auth.invalidToken,
        message: "The session's bearer token expired; open a new session with a fresh token.",
        metadata: { reason: "expired" },
      }),
    );
  }

  private armIdle(): void {
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      this.fail(
        new OmniRelayError({
          status: "deadline-exceeded",
          code: ErrorCodes.rpc.sessionIdle,
          message: `The session sent nothing for ${this.idleTimeoutMs} ms.`,
          metadata: { limitMs: String(this.idleTimeoutMs) },
        }),
      );
    }, this.idleTimeoutMs);
  }

  /**
   * Leases for the credit held, pushing what comes, until the credit is used up or the session ends. Lease calls are
   * pipelined: the next one starts as soon as the last one's grants are chosen, while they commit, so the session
   * always has a call waiting and an item enqueued meanwhile is granted in its enqueue's own commit. Grants are sent in
   * the order they were chosen; until then they count against the credit limit as the credit they used did.
   */
  private pump(): void {
    if (this.waiting || !this.open || this.stopping || this.credit <= 0) return;
    this.waiting = true;
    // An ejected peer's session stays open (its settlements still work) but gets no grants until it is back.
    const ejectedForMs = this.ejectedForMs();
    if (ejectedForMs > 0) {
      void this.sleep(ejectedForMs).then(() => this.next());
      return;
    }
    const engine = this.host.engine;
    const maxItems = Math.min(this.credit, engine.settings.maxBatchSize);
    let chosen = 0;
    const onGranted = (count: number) => {
      chosen = count;
      this.credit -= count;
      this.committing += count;
      queueMicrotask(() => this.next()); // not from inside the queue's mutation
    };
    const call = engine.lease({
      ...this.context,
      signal: this.granting.signal,
      waitMs: engine.settings.maxWaitMs,
      maxItems,
      onGranted,
    });
    // Each call's grants go out after the previous call's (two commits may settle within one turn), and so does the
    // end of a call that failed: a stop's `stopped` follows the last grant sent.
    const previous = this.sending;
    this.sending = call
      .then(
        (grants) =>
          previous.then(() => {
            this.committing -= grants.length;
            if (!chosen) {
              // The long poll ended with none. A queue that does not long-poll (maxWaitMs 0) answers at once: ask
              // again after a pause, not in a spin.
              if (engine.settings.maxWaitMs > 0) this.next();
              else void this.sleep(NO_LONG_POLL_RETRY_MS).then(() => this.next());
            }
            // (After the end, a grant committed goes back to the queue: the signal aborted.)
            if (this.open && grants.length > 0) this.sink.send({ grants });
          }),
        (error: unknown) =>
          previous.then(() => {
            this.committing -= chosen;
            if (!chosen) this.waiting = false;
            // A stop ends the waiting call (what it had chosen goes back to the queue): not a failure of the session.
            if (!this.stopping) this.fail(error);
          }),
      )
      .catch((error: unknown) => this.fail(error));
  }

  /** The call that was waiting for grants has them (or ended): the next may start. */
  private next(): void {
    this.waiting = false;
    this.pump();
  }

  /** How long the session's peer stays ejected by outlier detection; 0 when it is not. */
  private ejectedForMs(): number {
    const peerId = this.context.peerId;
    const ejection = peerId ? this.host.tracker?.ejection(peerId) : undefined;
    return ejection ? ejection.ejectedUntil - this.clock.now() : 0;
  }

  /** Resolves after `ms` or when the session ends. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      const done = () => {
        this.clock.clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private async settle(frame: SessionClientFrame): Promise<void> {
    if (!this.open) return;
    const engine = this.host.engine;
    const tasks: Array<Promise<SessionResult[]>> = [];
    if (frame.complete?.length) tasks.push(this.completeAll(frame.complete));
    for (const op of frame.fail ?? []) tasks.push(this.failOne(op));
    for (const op of frame.heartbeat ?? []) {
      tasks.push(
        engine.heartbeat(op.ownershipToken, this.context).then(
          (r) => [{ id: op.id, leaseExpiresAt: r.leaseExpiresAt, remainingMs: r.remainingMs }],
          (error: unknown) => [errorResult(op.id, error)],
        ),
      );
    }
    const results = (await Promise.all(tasks)).flat();
    if (this.open) this.sink.send({ results });
  }

  private async completeAll(ops: readonly SessionTokenOp[]): Promise<SessionResult[]> {
    const tokens: ResourceLeaseOwnershipToken[] = ops.map((op) => op.ownershipToken);
    try {
      const results = await this.host.engine.completeMany(tokens, this.context);
      return results.map((r, i) => (r.success ? { id: ops[i]!.id } : errorResult(ops[i]!.id, r.error)));
    } catch (error) {
      return ops.map((op) => errorResult(op.id, error));
    }
  }

  private async failOne(op: SessionFailOp): Promise<SessionResult[]> {
    const { id, ownershipToken, ...rest } = op;
    try {
      const outcome = await this.host.engine.fail(ownershipToken, { ...this.context, ...rest });
      return [{ id, outcome }];
    } catch (error) {
      return [errorResult(id, error)];
    }
  }
}

function errorResult(id: number, thrown: unknown): SessionResult {
  const error = OmniRelayError.from(thrown);
  return { id, status: error.status, code: error.code, message: error.message };
}
