import type { Logger } from "../contracts/health.js";
import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import { expiredLocallyError, fencedError, isLeaseLost, leaseMeta } from "./errors.js";
import type { ResourceLeaseWorkerClient, ResourceLeaseWorkerContext } from "./options.js";

/** What a lease run needs from its worker. Internal. */
export interface LeaseRunHost {
  readonly client: ResourceLeaseWorkerClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly heartbeatFraction: number;
  readonly safetyMarginMs: number;
  /** The lease was lost while the handler ran; the handler's signal has fired. */
  onLost(run: LeaseRun, reason: OmniRelayError): void;
  /** A renewal failed transiently and will be retried in `retryInMs` (or not, when undefined). */
  onRenewalError(run: LeaseRun, error: OmniRelayError, retryInMs: number | undefined): void;
}

/**
 * Phase of a lease: `running` (handler running, lease renewed), `settled` (handler returned; timers stopped),
 * `lost` (fenced or expired locally; the worker must not act on it), `abandoned` (close gave up on the handler).
 */
export type LeaseRunPhase = "running" | "settled" | "lost" | "abandoned";

const noop = () => {};

/**
 * One leased item while its handler runs: renews the lease at `heartbeatFraction` of its length, and aborts the
 * handler's signal when a renewal is rejected or the deadline minus the safety margin arrives unrenewed. Internal.
 */
export class LeaseRun {
  readonly grant: ResourceLeaseGrant;
  readonly token: ResourceLeaseOwnershipToken;
  readonly context: ResourceLeaseWorkerContext;
  private readonly host: LeaseRunHost;
  /**
   * The handler's signal, made when the handler first reads `context.signal`: building an AbortSignal is a measurable
   * share of a busy worker's CPU, and most handlers never look at it. {@link abortReason} aborts it when made later.
   */
  private handlerAbort: AbortController | undefined;
  private abortReason: OmniRelayError | undefined;
  /**
   * Cancels renewal calls when the run leaves `running`. Made with the first renewal: most runs end before one, and
   * aborting a controller builds a DOMException with a stack (a measurable share of a busy worker's CPU).
   */
  private callsAbort: AbortController | undefined;
  private current: LeaseRunPhase = "running";
  private expiresAtMs = 0;
  private lengthMs = 0;
  private lastRenewalError: OmniRelayError | undefined;
  /** When the next automatic renewal is due (Infinity: none scheduled, e.g. while one is in flight). */
  private renewAtMs = Number.POSITIVE_INFINITY;
  /** One timer per run, for whichever comes first: the next renewal or the local deadline (see {@link arm}). */
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(grant: ResourceLeaseGrant, host: LeaseRunHost) {
    this.grant = grant;
    this.token = grant.ownershipToken;
    this.host = host;
    this.context = new RunContext(this, grant.attempt);
    const now = host.clock.now();
    this.schedule(now, grant.leaseExpiresAt - now);
  }

  get phase(): LeaseRunPhase {
    return this.current;
  }

  /** The worker's estimate of the server's deadline for this lease. */
  get expiresAt(): number {
    return this.expiresAtMs;
  }

  /** The handler returned or threw: stop renewing. Returns false when the lease was already lost or abandoned. */
  settle(): boolean {
    if (this.current !== "running") return false;
    this.current = "settled";
    this.stop();
    return true;
  }

  /** Close gave up waiting: abort the handler. Returns false when the run was not running. */
  abandon(reason: OmniRelayError): boolean {
    if (this.current !== "running") return false;
    this.current = "abandoned";
    this.stop();
    this.abortHandler(reason);
    return true;
  }

  /** Renews now, joining a renewal in flight. Rejections are always observed, so an unawaited call is harmless. */
  renew(): Promise<void> {
    if (this.current !== "running") {
      const reason =
        this.abortReason ??
        new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.worker.leaseSettled,
          message: "The handler has settled; the lease is no longer renewed.",
          metadata: leaseMeta(this.token),
        });
      return Promise.reject(reason);
    }
    if (this.inFlight) return this.inFlight;
    this.cancelRenewal();
    this.callsAbort ??= new AbortController();
    // Deferred a microtask so that even a client that throws synchronously leaves `inFlight` consistent.
    const call = Promise.resolve()
      .then(() => this.renewOnce())
      .finally(() => {
        this.inFlight = undefined;
      });
    call.catch(noop);
    this.inFlight = call;
    return call;
  }

  private async renewOnce(): Promise<void> {
    const sentAt = this.host.clock.now();
    const timeoutMs = Math.max(1, this.expiresAtMs - sentAt);
    try {
      const signal = this.callsAbort?.signal;
      const r = await this.host.client.heartbeat(this.token, signal ? { signal, timeoutMs } : { timeoutMs });
      if (this.current !== "running") return;
      this.lastRenewalError = undefined;
      // remainingMs is measured by the server, so sentAt + remainingMs never overestimates, whatever the clock skew.
      if (typeof r.remainingMs === "number" && Number.isFinite(r.remainingMs)) this.schedule(sentAt, r.remainingMs);
      else this.schedule(this.host.clock.now(), r.leaseExpiresAt - this.host.clock.now());
    } catch (thrown) {
      const error = OmniRelayError.from(thrown);
      if (this.current !== "running") throw error;
      if (isLeaseLost(error)) {
        // A cancelled item: the handler's signal says so (its code), rather than "fenced".
        const reason = error.code === ErrorCodes.resourceLease.leaseCancelled ? error : fencedError(this.token, error);
        this.lose(reason);
        throw reason;
      }
      this.lastRenewalError = error;
      const untilAbort = this.abortAt() - this.host.clock.now();
      const retryInMs = Math.max(10, Math.min(1_000, Math.floor(untilAbort / 4)));
      const willRetry = retryInMs < untilAbort;
      this.host.onRenewalError(this, error, willRetry ? retryInMs : undefined);
      if (willRetry) {
        this.renewAtMs = this.host.clock.now() + retryInMs;
        this.arm();
      }
      throw error;
    }
  }

  private schedule(from: number, remainingMs: number): void {
    const now = this.host.clock.now();
    const length = Math.max(0, remainingMs);
    this.expiresAtMs = from + length;
    this.lengthMs = length;
    this.renewAtMs =
      this.host.heartbeatFraction < 1
        ? Math.max(now, from + length * this.host.heartbeatFraction)
        : Number.POSITIVE_INFINITY;
    this.arm(now);
  }

  /** (Re)sets the run's one timer for the earlier of the next renewal and the local deadline. */
  private arm(now = this.host.clock.now()): void {
    if (this.timer !== undefined) this.host.clock.clearTimeout(this.timer);
    const dueAt = Math.min(this.renewAtMs, this.abortAt());
    this.timer = this.host.clock.setTimeout(() => this.onTimer(), Math.max(0, dueAt - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.current !== "running") return;
    // Whichever the timer was set for (anything that moves either time re-arms it); on a tie, the deadline.
    if (this.renewAtMs >= this.abortAt()) {
      this.lose(expiredLocallyError(this.token, this.lastRenewalError));
      return;
    }
    this.cancelRenewal(); // re-arms for the deadline, which stays armed while the renewal is out
    this.renew().catch(noop);
  }

  /** Drops the scheduled automatic renewal, keeping the deadline armed. */
  private cancelRenewal(): void {
    if (this.renewAtMs === Number.POSITIVE_INFINITY) return;
    this.renewAtMs = Number.POSITIVE_INFINITY;
    this.arm();
  }

  /** Local deadline: the lease deadline minus the safety margin, clamped to a quarter of the lease length. */
  private abortAt(): number {
    return this.expiresAtMs - Math.min(this.host.safetyMarginMs, this.lengthMs / 4);
  }

  private lose(reason: OmniRelayError): void {
    if (this.current !== "running") return;
    this.current = "lost";
    this.stop();
    this.abortHandler(reason);
    this.host.onLost(this, reason);
  }

  /** The handler's signal (made when first asked for). Internal to the run's context. */
  handlerSignal(): AbortSignal {
    if (!this.handlerAbort) {
      this.handlerAbort = new AbortController();
      if (this.abortReason) this.handlerAbort.abort(this.abortReason);
    }
    return this.handlerAbort.signal;
  }

  private abortHandler(reason: OmniRelayError): void {
    this.abortReason = reason;
    this.handlerAbort?.abort(reason);
  }

  private stop(): void {
    if (this.timer !== undefined) this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.callsAbort?.abort();
  }
}

/**
 * A run's handler context: one small object per item, its accessors on the prototype. An object literal with getters
 * closing over the run built two closures and two accessor pairs per item (a busy worker's allocation). `heartbeat`
 * is bound when first read, so a handler may take it off the context and call it alone.
 */
class RunContext implements ResourceLeaseWorkerContext {
  readonly attempt: number;
  readonly #run: LeaseRun;
  #heartbeat: (() => Promise<void>) | undefined;

  constructor(run: LeaseRun, attempt: number) {
    this.#run = run;
    this.attempt = attempt;
  }

  get signal(): AbortSignal {
    return this.#run.handlerSignal();
  }

  get leaseExpiresAt(): number {
    return this.#run.expiresAt;
  }

  get heartbeat(): () => Promise<void> {
    this.#heartbeat ??= () => this.#run.renew();
    return this.#heartbeat;
  }
}
