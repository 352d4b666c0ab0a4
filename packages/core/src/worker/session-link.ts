import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { OmniRelayStatus } from "../errors/status.js";
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
}

interface Waiting {
  readonly resolve: (result: SessionResult) => void;
  readonly reject: (error: OmniRelayError) => void;
  timer: TimerHandle | undefined;
}

type MutableFrame = { credit: number; complete: SessionTokenOp[]; fail: SessionFailOp[]; heartbeat: SessionTokenOp[] };

/**
 * A worker's end of one session: gathers credit and settlements of the same turn into one frame, pairs each answer
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

  constructor(host: WorkerSessionHost) {
    this.host = host;
    this.channel = host.open({
      onOpen: () => {
        this.opened = true;
        this.armKeepAlive();
        host.onOpen();
      },
      onFrame: (frame) => this.receive(frame),
      onClose: (error) => this.end(error),
    });
  }

  /** The stream is open: operations go on it. */
  get isOpen(): boolean {
    return this.opened && !this.ended;
  }

  /** Grants `n` more credit. */
  credit(n: number): void {
    this.pending().credit += n;
  }

  complete(token: ResourceLeaseOwnershipToken): Promise<void> {
    return this.op("complete", { ownershipToken: token }, this.host.answerTimeoutMs ?? 30_000).then(() => undefined);
  }

  async fail(
    token: ResourceLeaseOwnershipToken,
    request: { reason?: string; errorCode?: string; requeue?: boolean; delayMs?: number },
  ): Promise<ResourceLeaseFailOutcome> {
    const r = await this.op("fail", { ownershipToken: token, ...request }, this.host.answerTimeoutMs ?? 30_000);
    return r.outcome as ResourceLeaseFailOutcome;
  }

  async heartbeat(
    token: ResourceLeaseOwnershipToken,
    timeoutMs?: number,
  ): Promise<{ leaseExpiresAt: number; remainingMs: number }> {
    const r = await this.op("heartbeat", { ownershipToken: token }, timeoutMs);
    return { leaseExpiresAt: r.leaseExpiresAt ?? 0, remainingMs: r.remainingMs ?? 0 };
  }

  /** Ends the session from the worker's side. */
  close(): void {
    this.channel.close();
  }

  private op(
    kind: "complete" | "fail" | "heartbeat",
    fields: Omit<SessionFailOp, "id">,
    timeoutMs?: number,
  ): Promise<SessionResult> {
    if (!this.isOpen) return Promise.reject(closedError());
    const id = this.nextId++;
    return new Promise<SessionResult>((resolve, reject) => {
      const waiting: Waiting = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiting.timer = this.host.clock.setTimeout(() => {
          this.waiting.delete(id);
          const error = new OmniRelayError({
            status: "deadline-exceeded",
            code: ErrorCodes.rpc.deadlineExceeded,
            message: `The session did not answer the ${kind} within ${timeoutMs} ms.`,
          });
          reject(error);
          // A stream that stopped answering is broken (a half-open socket sends no error): end it.
          this.close();
        }, timeoutMs);
      }
      this.waiting.set(id, waiting);
      const frame = this.pending();
      if (kind === "fail") frame.fail.push({ ...fields, id });
      else frame[kind].push({ id, ownershipToken: fields.ownershipToken });
    });
  }

  /** The frame being gathered this turn; it is sent once the turn's I/O callbacks have run. */
  private pending(): MutableFrame {
    this.frame ??= { credit: 0, complete: [], fail: [], heartbeat: [] };
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return this.frame;
  }

  private flush(): void {
    this.flushScheduled = false;
    const f = this.frame;
    this.frame = undefined;
    if (!f || this.ended) return;
    const out: SessionClientFrame = {
      ...(f.credit > 0 ? { credit: f.credit } : {}),
      ...(f.complete.length > 0 ? { complete: f.complete } : {}),
      ...(f.fail.length > 0 ? { fail: f.fail } : {}),
      ...(f.heartbeat.length > 0 ? { heartbeat: f.heartbeat } : {}),
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
            status: (result.status ?? "unknown") as OmniRelayStatus,
            code: result.code,
            message: result.message ?? result.code,
          }),
        );
      }
    }
    if (frame.grants && frame.grants.length > 0) this.host.onGrants(frame.grants);
  }

  private end(error: OmniRelayError): void {
    if (this.ended) return;
    this.ended = true;
    if (this.keepAlive !== undefined) this.host.clock.clearTimeout(this.keepAlive);
    const closed = closedError(error);
    for (const waiting of this.waiting.values()) {
      if (waiting.timer !== undefined) this.host.clock.clearTimeout(waiting.timer);
      waiting.reject(closed);
    }
    this.waiting.clear();
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
