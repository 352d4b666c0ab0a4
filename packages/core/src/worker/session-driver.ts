import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResolvedWorkerOptions, ResourceLeaseWorkerClient } from "./options.js";
import { WorkerSession, type WorkerSessionHost } from "./session-link.js";

/** What the session driver needs from its worker. Internal. */
export interface SessionDriverHost {
  readonly options: ResolvedWorkerOptions;
  /** The worker is still taking items. */
  running(): boolean;
  /** Free slots: concurrency + prefetch minus the items running and held. */
  free(): number;
  /** Items pushed by the dispatcher: run, hold, or hand back. */
  accept(grants: readonly ResourceLeaseGrant[]): void;
  /** A session could not be opened or broke: report it, as a failed lease call would be. */
  failed(error: OmniRelayError, retryInMs: number): void;
  /** Waits `delayMs` (or until the worker closes). */
  pause(delayMs: number): Promise<void>;
}

/**
 * The client lease runs renew through: on the session while it is open, unary otherwise (also while a new session
 * is being opened). Internal.
 */
export function renewingClient(
  client: ResourceLeaseWorkerClient,
  session: () => WorkerSession | undefined,
): ResourceLeaseWorkerClient {
  return {
    lease: (r, opts) => client.lease(r, opts),
    heartbeat: (t, opts) => session()?.heartbeat(t, opts?.timeoutMs) ?? client.heartbeat(t, opts),
    complete: (t, opts) => client.complete(t, opts),
    completeMany: (t, opts) => client.completeMany(t, opts),
    fail: (t, r, opts) => client.fail(t, r, opts),
  };
}

/** The most credit a worker grants one session (a dispatcher's default `maxCredit`). */
const MAX_CREDIT = 1000;

/** An answer that says the dispatcher serves no worker sessions: the worker goes on with unary lease calls. */
function unsupported(error: OmniRelayError): boolean {
  return (
    error.status === "unimplemented" ||
    error.code === ErrorCodes.rpc.routeNotFound ||
    error.code === ErrorCodes.rpc.procedureNotFound
  );
}

/**
 * Keeps a worker's session open while the worker runs: opens it, grants credit for every free slot (topped up as
 * slots free, in the same frame as the completion that freed them), and opens a new one with backoff when it
 * breaks. Credit is counted per session: a new session starts from none, so nothing is asked for twice. Internal.
 */
export class SessionDriver {
  private readonly host: SessionDriverHost;
  private current: WorkerSession | undefined;
  /** Credit granted on the current session and not yet used by a grant. */
  private outstanding = 0;
  /** Ends the wait of {@link run} on the current session without closing it. */
  private wake: (() => void) | undefined;

  constructor(host: SessionDriverHost) {
    this.host = host;
  }

  /** The open session, if any: settlements and renewals go on it. */
  get session(): WorkerSession | undefined {
    return this.current?.isOpen ? this.current : undefined;
  }

  /**
   * Holds sessions until the worker stops. Resolves `unsupported` when the dispatcher serves none (the caller then
   * runs the unary loop), else `stopped`.
   */
  async run(): Promise<"unsupported" | "stopped"> {
    const o = this.host.options;
    let failures = 0;
    while (this.host.running()) {
      const { opened, error, openMs } = await this.once();
      if (!this.host.running()) break;
      if (!opened && unsupported(error)) return "unsupported";
      // A session that served a while starts the backoff over; one that ended soon after it opened (a dispatcher
      // that answers every session with an error frame) counts as a failure, or the worker would reopen at once.
      failures = opened && openMs >= o.retryMaxDelayMs ? 1 : failures + 1;
      const ceiling = Math.min(o.retryMaxDelayMs, o.retryInitialDelayMs * 2 ** Math.min(failures - 1, 30));
      const retryInMs = Math.max(1, Math.round(ceiling / 2 + (o.random() * ceiling) / 2));
      this.host.failed(error, retryInMs);
      await this.host.pause(retryInMs);
    }
    return "stopped";
  }

  /** Grants credit for the free slots not yet asked for. */
  refill(): void {
    const session = this.session;
    if (!session || !this.host.running()) return;
    const want = Math.min(this.host.free(), MAX_CREDIT) - this.outstanding;
    if (want <= 0) return;
    this.outstanding += want;
    session.credit(want);
  }

  /**
   * The worker is closing: {@link run} returns, and the session stays open for the settlements still to come
   * (grants still arriving are handed back on it) until {@link close}.
   */
  stop(): void {
    this.wake?.();
  }

  /**
   * Asks the open session's dispatcher to grant nothing more and waits (at most `timeoutMs`) for its answer, so that
   * every grant it sent has reached the worker, which hands it back while closing. Without it, an item enqueued while
   * the worker leaves could be granted into a session that is closing and stay leased to nobody until it expires.
   */
  async drain(timeoutMs: number): Promise<void> {
    await this.session?.stop(timeoutMs);
  }

  /** Ends the current session; its leases stay with the worker's queue (settled, renewed elsewhere, or expiring). */
  close(): void {
    this.stop();
    this.current?.close();
  }

  /** Runs one session to its end: whether it opened, why it ended, and how long it was open (ms). */
  private once(): Promise<{ opened: boolean; error: OmniRelayError; openMs: number }> {
    const o = this.host.options;
    const openSession = o.client.openSession?.bind(o.client);
    return new Promise((resolve) => {
      let opened = false;
      let openedAt = 0;
      const end = (error: OmniRelayError) => resolve({ opened, error, openMs: opened ? o.clock.now() - openedAt : 0 });
      this.wake = () => end(stoppedError());
      this.outstanding = 0;
      let session: WorkerSession;
      const options: WorkerSessionHost = {
        clock: o.clock,
        openTimeoutMs: o.sessionOpenTimeoutMs,
        open: (options) => {
          const channel = openSession?.({ ...options, caller: o.peerId });
          if (!channel) throw new TypeError("openSession returned no session.");
          return channel;
        },
        onOpen: () => {
          opened = true;
          openedAt = o.clock.now();
          this.refill();
        },
        onGrants: (grants) => {
          this.outstanding = Math.max(0, this.outstanding - grants.length);
          this.host.accept(grants);
        },
        onClose: (error) => {
          if (this.current === session) this.current = undefined;
          this.outstanding = 0;
          end(error);
        },
      };
      try {
        session = new WorkerSession(options);
      } catch (thrown) {
        const error = new OmniRelayError({
          status: "unimplemented",
          code: ErrorCodes.rpc.procedureNotFound,
          message: "The client opens no worker sessions.",
          cause: thrown,
        });
        end(error);
        return;
      }
      this.current = session;
    });
  }
}

function stoppedError(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.worker.shuttingDown,
    message: "The worker is shutting down.",
  });
}
