import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { parseStatus } from "../errors/status.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";
import type { SessionChannel, SessionChannelOptions } from "../resourcelease/session-channel.js";
import type {
  SessionClientFrame,
  SessionFailOp,
  SessionResult,
  SessionServerFrame,
  SessionTokenOp,
} from "../resourcelease/session-messages.js";
import type { Clock, TimerHandle } from "../util/clock.js";

/** What a worker session tells its worker. Internal. */
export interface WorkerSessionHost {
  readonly clock: Clock;
  /** Opens the transport stream (the worker's client's `openSession`). */
  readonly open: (options: Omit<SessionChannelOptions, "namespace">) => SessionChannel;
  readonly onOpen: () => void;
  readonly onGrants: (grants: readonly ResourceLeaseGrant[]) => void;
  /** Called once, when the session has ended; every operation still waiting has been rejected. */
  readonly onClose: (error: OmniRelayError) => void;
  /** A keep-alive is sent after this long without a frame. @defaultValue 15000 */
  readonly keepAliveMs?: number;
  /**
   * A complete or fail not answered within this long fails deadline-exceeded and ends the session (a stream that
   * stopped answering is broken; the worker opens a new one). @defaultValue 30000
   */
  readonly answerTimeoutMs?: number;
  /**
   * A session the dispatcher has not accepted within this long (no `101`, no initial metadata) ends deadline-exceeded
   * `omnirelay.deadline_exceeded` and its stream is closed, so the worker opens a new one. @defaultValue 10000
   */
  readonly openTimeoutMs?: number;
}

interface Waiting {
  readonly kind: "complete" | "fail" | "heartbeat";
  readonly resolve: (result: SessionResult) => void;
  readonly reject: (error: OmniRelayError) => void;
  /** When a completion or fail times out (the session's one answer timer watches these, oldest first). */
  readonly deadline: number | undefined;
  /** A renewal's own timer (its timeout is the lease's, not the session's). */
  timer: TimerHandle | undefined;
}

type MutableFrame = {
  credit: number;
  complete: SessionTokenOp[];
  fail: SessionFailOp[];
  heartbeat: SessionTokenOp[];
  stop: boolean;
};

/**
 * A frame goes out as soon as it holds this many completions and fails, not only at the end of the turn. A worker
 * whose handlers are short settles a whole frame of grants in one turn; sent as one frame, the dispatcher waited for
 * all of it while the worker then waited for the next grants, the two taking turns on two cores. In parts, the
 * dispatcher commits the first while the worker runs the rest (+15–40 % items/s draining a filled queue in the
 * two-process probe).
 */
const SETTLEMENTS_PER_FRAME = 100;

/**
 * A worker's end of one session: gathers credit and settlements of the same turn into one frame (a full one, of
 * {@link SETTLEMENTS_PER_FRAME} completions and fails, goes out at once), pairs each answer
 * with its operation by id, and hands grants to the worker. When the stream ends every waiting operation is rejected
 * unavailable `omnirelay.session.closed` (the worker sends it again, on its next session or unary). Internal.
 */
export class WorkerSession {
  private readonly host: WorkerSessionHost;
  private readonly channel: SessionChannel;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private frame: MutableFrame | undefined;
  private flushScheduled = false;
  private opened = false;
  private ended = false;
  private keepAlive: TimerHandle | undefined;
  /**
   * One timer for every completion and fail waiting: armed for the oldest one's deadline (they share one timeout, so
   * the oldest is due first), moved on when it fires. A timer per operation was a measurable share of a busy worker.
   */
  private answerTimer: TimerHandle | undefined;
  /** Ends a session not accepted in time (see {@link WorkerSessionHost.openTimeoutMs}). */
  private openTimer: TimerHandle | undefined;
  /** Settles {@link stop}'s promise: the dispatcher answered `stopped`, the session ended, or the wait timed out. */
  private stopDone: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  constructor(host: WorkerSessionHost) {
    this.host = host;
    const openTimeoutMs = host.openTimeoutMs ?? 10_000;
    this.openTimer = host.clock.setTimeout(() => this.openTimedOut(openTimeoutMs), openTimeoutMs);
    try {
      this.channel = host.open({
        onOpen: () => {
          if (this.ended || this.opened) return;
          this.clearOpenTimer();
          this.opened = true;
          this.armKeepAlive();
          host.onOpen();
        },
        onFrame: (frame) => {
          if (!this.ended) this.receive(frame);
        },
        onClose: (error) => this.end(error),
      });
    } catch (thrown) {
      this.clearOpenTimer();
      throw thrown;
    }
  }

  /** The stream is open: operations go on it. */
  get isOpen(): boolean {
    return this.opened && !this.ended;
  }

  /** Grants `n` more credit. */
  credit(n: number): void {
    this.pending().credit += n;
  }

  /** Resolves (with nothing of use) when the dispatcher has applied the completion. */
  complete(token: ResourceLeaseOwnershipToken): Promise<unknown> {
    return this.op("complete", { ownershipToken: token });
  }

  async fail(
    token: ResourceLeaseOwnershipToken,
    request: { reason?: string; errorCode?: string; requeue?: boolean; delayMs?: number },
  ): Promise<ResourceLeaseFailOutcome> {
    const r = await this.op("fail", { ownershipToken: token, ...request });
    return r.outcome as ResourceLeaseFailOutcome;
  }

  async heartbeat(
    token: ResourceLeaseOwnershipToken,
    timeoutMs?: number,
  ): Promise<{ leaseExpiresAt: number; remainingMs: number }> {
    const r = await this.op("heartbeat", { ownershipToken: token }, timeoutMs);
    return { leaseExpiresAt: r.leaseExpiresAt ?? 0, remainingMs: r.remainingMs ?? 0 };
  }

  /**
   * Asks the dispatcher to grant nothing more on this session. Resolves once it answers `stopped` (every grant it sent
   * has arrived and been handed to the worker before that), the session ends, or `timeoutMs` passes (a dispatcher that
   * predates `stop` does not answer). Settlements go on until {@link close}.
   */
  stop(timeoutMs: number): Promise<void> {
    if (!this.isOpen) return Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = this.host.clock.setTimeout(() => this.stopDone?.(), timeoutMs);
      this.stopDone = () => {
        this.stopDone = undefined;
        this.host.clock.clearTimeout(timer);
        resolve();
      };
      this.pending().stop = true;
    });
    return this.stopping;
  }

  /** Ends the session from the worker's side. */
  close(): void {
    this.channel.close();
  }

  /** Sends an operation and waits for its answer: within `timeoutMs` (a renewal), else the session's answer timeout. */
  private op(
    kind: "complete" | "fail" | "heartbeat",
    fields: Omit<SessionFailOp, "id">,
    timeoutMs?: number,
  ): Promise<SessionResult> {
    if (!this.isOpen) return Promise.reject(closedError());
    const id = this.nextId++;
    return new Promise<SessionResult>((resolve, reject) => {
      const clock = this.host.clock;
      const shared = kind !== "heartbeat";
      const deadline = shared ? clock.now() + this.answerTimeoutMs() : undefined;
      const waiting: Waiting = { kind, resolve, reject, deadline, timer: undefined };
      if (!shared && timeoutMs !== undefined) {
        waiting.timer = clock.setTimeout(() => this.timedOut(id, waiting, timeoutMs), timeoutMs);
      }
      this.waiting.set(id, waiting);
      if (shared) this.answerTimer ??= clock.setTimeout(() => this.sweep(), this.answerTimeoutMs());
      const frame = this.pending();
      if (kind === "fail") frame.fail.push({ ...fields, id });
      else frame[kind].push({ id, ownershipToken: fields.ownershipToken });
      if (frame.complete.length + frame.fail.length >= SETTLEMENTS_PER_FRAME) this.flush();
    });
  }

  private answerTimeoutMs(): number {
    return this.host.answerTimeoutMs ?? 30_000;
  }

  /** The answer timer fired: times out the oldest completion or fail if it is due, else waits for it. */
  private sweep(): void {
    this.answerTimer = undefined;
    const now = this.host.clock.now();
    for (const [id, waiting] of this.waiting) {
      if (waiting.deadline === undefined) continue;
      if (waiting.deadline <= now) this.timedOut(id, waiting, this.answerTimeoutMs());
      else this.answerTimer = this.host.clock.setTimeout(() => this.sweep(), waiting.deadline - now);
      return;
    }
  }

  private timedOut(id: number, waiting: Waiting, timeoutMs: number): void {
    this.waiting.delete(id);
    waiting.reject(
      new OmniRelayError({
        status: "deadline-exceeded",
        code: ErrorCodes.rpc.deadlineExceeded,
        message: `The session did not answer the ${waiting.kind} within ${timeoutMs} ms.`,
      }),
    );
    // A stream that stopped answering is broken (a half-open socket sends no error): end it.
    this.close();
  }

  /** The frame being gathered this turn; it is sent once the turn's I/O callbacks have run, or as soon as it is full. */
  private pending(): MutableFrame {
    this.frame ??= { credit: 0, complete: [], fail: [], heartbeat: [], stop: false };
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return this.frame;
  }

  private flush(): void {
    const f = this.frame;
    this.frame = undefined;
    if (!f || this.ended) return;
    const out: SessionClientFrame = {
      ...(f.credit > 0 ? { credit: f.credit } : {}),
      ...(f.complete.length > 0 ? { complete: f.complete } : {}),
      ...(f.fail.length > 0 ? { fail: f.fail } : {}),
      ...(f.heartbeat.length > 0 ? { heartbeat: f.heartbeat } : {}),
      ...(f.stop ? { stop: true } : {}),
    };
    this.send(out);
  }

  private send(frame: SessionClientFrame): void {
    this.channel.send(frame);
    this.armKeepAlive();
  }

  private armKeepAlive(): void {
    if (this.keepAlive !== undefined) this.host.clock.clearTimeout(this.keepAlive);
    this.keepAlive = this.host.clock.setTimeout(() => {
      this.keepAlive = undefined;
      if (!this.ended) this.send({});
    }, this.host.keepAliveMs ?? 15_000);
  }

  private receive(frame: SessionServerFrame): void {
    for (const result of frame.results ?? []) {
      const waiting = this.waiting.get(result.id);
      if (!waiting) continue; // timed out: the answer comes too late
      this.waiting.delete(result.id);
      if (waiting.timer !== undefined) this.host.clock.clearTimeout(waiting.timer);
      if (result.code === undefined) waiting.resolve(result);
      else {
        waiting.reject(
          new OmniRelayError({
            // The wire name (`INVALID_ARGUMENT`) too: a status read verbatim misjudged lost leases as transient.
            status: parseStatus(result.status) ?? "unknown",
            code: result.code,
            message: result.message ?? result.code,
          }),
        );
      }
    }
    if (frame.grants && frame.grants.length > 0) this.host.onGrants(frame.grants);
    if (frame.stopped) this.stopDone?.();
  }

  /** The dispatcher neither accepted nor refused the session in time: end it, then close its stream. */
  private openTimedOut(timeoutMs: number): void {
    this.openTimer = undefined;
    if (this.opened || this.ended) return;
    this.end(
      new OmniRelayError({
        status: "deadline-exceeded",
        code: ErrorCodes.rpc.deadlineExceeded,
        message: `The dispatcher did not accept the worker session within ${timeoutMs} ms.`,
        metadata: { timeoutMs: String(timeoutMs) },
      }),
    );
    this.close();
  }

  private clearOpenTimer(): void {
    if (this.openTimer !== undefined) this.host.clock.clearTimeout(this.openTimer);
    this.openTimer = undefined;
  }

  private end(error: OmniRelayError): void {
    if (this.ended) return;
    this.ended = true;
    this.clearOpenTimer();
    if (this.keepAlive !== undefined) this.host.clock.clearTimeout(this.keepAlive);
    if (this.answerTimer !== undefined) this.host.clock.clearTimeout(this.answerTimer);
    this.answerTimer = undefined;
    const closed = closedError(error);
    for (const waiting of this.waiting.values()) {
      if (waiting.timer !== undefined) this.host.clock.clearTimeout(waiting.timer);
      waiting.reject(closed);
    }
    this.waiting.clear();
    this.stopDone?.();
    this.host.onClose(error);
  }
}

function closedError(cause?: OmniRelayError): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.rpc.sessionClosed,
    message: `The worker session ended before the answer came${cause ? `: ${cause.message}` : "."}`,
    ...(cause ? { cause } : {}),
  });
}
