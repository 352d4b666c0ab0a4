import type { UnaryHandler, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import { callAbort, type WithCallAbort } from "../util/signals.js";
import { maxDeadlineHorizonMs } from "./deadline-headers.js";
import { optionalPositive } from "./options.js";

/** Options of {@link DeadlineMiddleware}. */
export interface DeadlineMiddlewareOptions {
  /** Timeout of a call that arrives without a deadline. @defaultValue `maxTimeoutMs` (no deadline when both are unset) */
  readonly defaultTimeoutMs?: number;
  /** Longest time any call may run, whatever deadline the caller asked for. @defaultValue `undefined` (no cap) */
  readonly maxTimeoutMs?: number;
  /** Time source and timers. @defaultValue `systemClock` */
  readonly clock?: Clock;
}

interface InFlightCall {
  timer?: TimerHandle;
  fail(error: OmniRelayError): void;
}

/**
 * The deadline step every `Dispatcher` runs first, on its clock (configure it with the dispatcher's `deadlines`
 * option; a dispatcher refuses one in its middleware chain, where it would be a second timer). On its own it fits an
 * outbound or test chain built with `composeInbound`.
 *
 * Enforces a deadline on every call: the caller's `meta.deadline` capped at `maxTimeoutMs`, or `defaultTimeoutMs`
 * from now when the caller gave none. The handler sees the effective `meta.deadline` and a `meta.signal` that also
 * aborts (with the deadline error as its reason) when the deadline passes; the call then fails even if the handler
 * ignores its signal. A call whose deadline has already passed is refused before anything after this middleware
 * runs. A deadline further than {@link maxDeadlineHorizonMs} away is treated as that far. Each call's timer is
 * cleared as soon as the call settles.
 */
export class DeadlineMiddleware implements UnaryInboundMiddleware {
  private readonly defaultTimeoutMs: number | undefined;
  private readonly maxTimeoutMs: number | undefined;
  private readonly clock: Clock;
  private readonly inFlight = new Set<InFlightCall>();
  private closed = false;

  /**
   * Creates the middleware.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) when a timeout is not
   * a finite number > 0 or `defaultTimeoutMs` exceeds `maxTimeoutMs`.
   */
  constructor(options: DeadlineMiddlewareOptions = {}) {
    this.maxTimeoutMs = optionalPositive("maxTimeoutMs", options.maxTimeoutMs);
    const defaultTimeoutMs = optionalPositive("defaultTimeoutMs", options.defaultTimeoutMs);
    if (defaultTimeoutMs !== undefined && this.maxTimeoutMs !== undefined && defaultTimeoutMs > this.maxTimeoutMs) {
      throw OmniRelayError.invalidOption(
        "defaultTimeoutMs",
        "Option 'defaultTimeoutMs' must not exceed 'maxTimeoutMs'.",
      );
    }
    this.defaultTimeoutMs = defaultTimeoutMs ?? this.maxTimeoutMs;
    this.clock = options.clock ?? systemClock;
  }

  /** Number of calls whose deadline timer is running. */
  get activeCalls(): number {
    return this.inFlight.size;
  }

  /**
   * Runs `next` under the effective deadline.
   * @throws OmniRelayError deadline-exceeded `omnirelay.deadline_exceeded` when the deadline has passed (before or
   * during the call); cancelled `omnirelay.cancelled` when the middleware is closed mid-call; unavailable
   * `omnirelay.inbound.shutting_down` after close.
   */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const meta = request.meta;
    if (this.closed) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.inboundShuttingDown,
        message: "The server is shutting down.",
      });
    }
    const now = this.clock.now();
    const deadline = this.effectiveDeadline(meta.deadline, now);
    if (deadline === undefined) return next(request);
    if (deadline <= now) throw deadlineExceeded(meta.procedure, false);

    // The handler's signal aborts with the caller's or at the deadline. When the inbound gave the call a signal of its
    // own making (`callAbort`), that one is aborted at the deadline: no second signal (on Node 20 each costs
    // microseconds, see util/signals.ts). Otherwise a new one, linked to the caller's by a listener removed when the
    // call settles (not AbortSignal.any: ~10 µs a call on Node 20, and weak references for the GC to clear).
    const upstream = meta.signal;
    const owned = (meta as WithCallAbort)[callAbort];
    const controller = owned?.signal === upstream ? owned : new AbortController();
    const forward = controller === owned ? undefined : () => controller.abort(upstream.reason);
    if (forward) {
      if (upstream.aborted) forward();
      else upstream.addEventListener("abort", forward, { once: true });
    }
    const signal = controller.signal;
    return new Promise<UnaryResponse>((resolve, reject) => {
      const settle = (): boolean => {
        if (!this.inFlight.delete(call)) return false;
        if (call.timer !== undefined) this.clock.clearTimeout(call.timer);
        if (forward) upstream.removeEventListener("abort", forward);
        return true;
      };
      const call: InFlightCall = {
        fail: (error) => {
          if (!settle()) return;
          controller.abort(error);
          reject(error);
        },
      };
      this.inFlight.add(call);
      call.timer = this.clock.setTimeout(() => call.fail(deadlineExceeded(meta.procedure, true)), deadline - now);
      let result: Promise<UnaryResponse>;
      try {
        result = next({ ...request, meta: { ...meta, deadline, signal } });
      } catch (error) {
        result = Promise.reject(error);
      }
      // A handler that settles after the deadline fired is ignored here, but never left unhandled.
      result.then(
        (response) => {
          if (settle()) resolve(response);
        },
        (error: unknown) => {
          if (settle()) reject(error);
        },
      );
    });
  }

  /** Fails every call still running with `cancelled`, clears their timers, and refuses new calls. Idempotent. */
  close(): void {
    this.closed = true;
    for (const call of [...this.inFlight]) {
      call.fail(
        new OmniRelayError({
          status: "cancelled",
          code: ErrorCodes.rpc.cancelled,
          message: "The call was cancelled: the server is closing.",
        }),
      );
    }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  private effectiveDeadline(requested: number | undefined, now: number): number | undefined {
    // No timer can wait longer than the horizon (Node fires an over-long timer at once), so nothing is allowed to.
    const cap = now + Math.min(this.maxTimeoutMs ?? maxDeadlineHorizonMs, maxDeadlineHorizonMs);
    if (typeof requested === "number" && Number.isFinite(requested)) return Math.min(requested, cap);
    return this.defaultTimeoutMs === undefined ? undefined : Math.min(now + this.defaultTimeoutMs, cap);
  }
}

/**
 * The answer to a call whose deadline passed: before it ran (`outcome` `not_run`: nothing happened), or while it ran
 * (`unknown`: the handler is told through its signal, but what it had already done — an enqueue on its way into the
 * log, say — may still take effect, as gRPC's DEADLINE_EXCEEDED means).
 */
function deadlineExceeded(procedure: string, running: boolean): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.deadlineExceeded,
    message: running
      ? `The deadline of procedure '${procedure}' passed while it ran: it may still take effect.`
      : `The deadline of procedure '${procedure}' had already passed when the call arrived: it did not run.`,
    metadata: { procedure, outcome: running ? "unknown" : "not_run" },
  });
}
