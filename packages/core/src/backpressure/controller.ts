import type {
  Logger,
  ResourceLeaseBackpressureListener,
  ResourceLeaseBackpressureSignal,
} from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import { integerOption, numberOption } from "../wire/options.js";

/** Options of {@link ResourceLeaseBackpressureController}. */
export interface ResourceLeaseBackpressureControllerOptions {
  /** Pending count at or above which backpressure activates. An integer > 0; required. */
  readonly highWatermark: number;
  /**
   * Pending count at or below which backpressure clears. An integer >= 0 and < `highWatermark`.
   * @defaultValue `Math.floor(highWatermark / 2)`
   */
  readonly lowWatermark?: number;
  /**
   * Minimum time between two transitions. A refused transition is retried by a timer at the end of the cooldown.
   * @defaultValue 5000
   */
  readonly cooldownMs?: number;
  /**
   * Smallest value {@link ResourceLeaseBackpressureController.retryAfterMs} returns while active.
   * @defaultValue 100
   */
  readonly minRetryAfterMs?: number;
  /** Reads the queue's current pending count; called when a deferred re-evaluation fires. */
  readonly pendingCount: () => number;
  /** Listeners told about every transition, in this order. @defaultValue `[]` */
  readonly listeners?: readonly ResourceLeaseBackpressureListener[];
  /** Time source and timers. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** Receives listener failures. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/** Options of {@link ResourceLeaseBackpressureController.waitUntilInactive}. */
export interface WaitUntilInactiveOptions {
  /** Stops waiting; the promise rejects. */
  readonly signal?: AbortSignal;
}

interface Waiter {
  resolve(): void;
  reject(error: OmniRelayError): void;
}

interface ListenerEntry {
  readonly listener: ResourceLeaseBackpressureListener;
}

/**
 * Backpressure gate of a lease queue: high/low watermarks with hysteresis and a cooldown between transitions.
 *
 * The queue calls {@link observe} after every pending-count change. Unlike the original gate, a transition refused
 * by the cooldown is never lost: one timer fires at the end of the cooldown and re-evaluates with the current
 * pending count, so the gate cannot stay closed once the queue has drained.
 */
export class ResourceLeaseBackpressureController implements Disposable {
  /** Pending count at or above which backpressure activates. */
  readonly highWatermark: number;
  /** Pending count at or below which backpressure clears. */
  readonly lowWatermark: number;
  /** Minimum time between two transitions, ms. */
  readonly cooldownMs: number;

  private readonly minRetryAfterMs: number;
  private readonly readPending: () => number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners: ListenerEntry[];
  private readonly waiters = new Set<Waiter>();
  private readonly deliveries: ResourceLeaseBackpressureSignal[] = [];
  private delivering = false;
  private active = false;
  private closed = false;
  private lastTransitionAt: number | undefined;
  private transitionCount = 0;
  private latestSignal: ResourceLeaseBackpressureSignal | undefined;
  private timer: TimerHandle | undefined;

  /**
   * Creates an inactive gate.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option`) when a
   * watermark, the cooldown, `pendingCount`, or a listener is missing or out of range.
   */
  constructor(options: ResourceLeaseBackpressureControllerOptions) {
    if (typeof options !== "object" || options === null) {
      throw OmniRelayError.invalidOption("options", "Backpressure controller options are required.");
    }
    this.highWatermark = integerOption("highWatermark", options.highWatermark, { min: 1 });
    const low = options.lowWatermark ?? Math.floor(this.highWatermark / 2);
    this.lowWatermark = integerOption("lowWatermark", low, { min: 0 });
    if (this.lowWatermark >= this.highWatermark) {
      throw OmniRelayError.invalidOption(
        "lowWatermark",
        `Option 'lowWatermark' (${this.lowWatermark}) must be below 'highWatermark' (${this.highWatermark}).`,
      );
    }
    this.cooldownMs = numberOption("cooldownMs", options.cooldownMs ?? 5000, { min: 0 });
    this.minRetryAfterMs = numberOption("minRetryAfterMs", options.minRetryAfterMs ?? 100, { min: 0 });
    if (typeof options.pendingCount !== "function") {
      throw OmniRelayError.invalidOption(
        "pendingCount",
        "Option 'pendingCount' must be a function returning the pending count.",
      );
    }
    this.readPending = options.pendingCount;
    const listeners = options.listeners ?? [];
    if (!Array.isArray(listeners))
      throw OmniRelayError.invalidOption("listeners", "Option 'listeners' must be an array.");
    this.listeners = listeners.map((listener) => ({ listener: checkListener(listener) }));
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /** Whether backpressure is active (enqueues should wait or be refused). */
  get isActive(): boolean {
    return this.active;
  }

  /** The signal of the last transition, or `undefined` before the first one. */
  get latest(): ResourceLeaseBackpressureSignal | undefined {
    return this.latestSignal;
  }

  /** Number of transitions (activations plus deactivations) so far. */
  get transitions(): number {
    return this.transitionCount;
  }

  /**
   * Re-evaluates the gate with the queue's pending count. At or above the high watermark it activates, at or
   * below the low watermark it deactivates, in between it keeps its state. A transition inside the cooldown is
   * deferred to a timer at the end of the cooldown. Does nothing after {@link close}.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.argument.invalid` when `pendingCount` is not a
   * non-negative finite number.
   */
  observe(pendingCount: number): void {
    if (typeof pendingCount !== "number" || !Number.isFinite(pendingCount) || pendingCount < 0) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: `Pending count must be a non-negative number, got ${String(pendingCount)}.`,
        metadata: { field: "pendingCount" },
      });
    }
    if (this.closed) return;
    this.evaluate(pendingCount);
  }

  /**
   * Registers a listener for later transitions; it is called after the ones given at construction.
   * @returns a function that removes this registration (calling it again does nothing).
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` when `listener` has no
   * `onBackpressureChanged` method.
   */
  addListener(listener: ResourceLeaseBackpressureListener): () => void {
    const entry: ListenerEntry = { listener: checkListener(listener) };
    this.listeners.push(entry);
    return () => {
      const index = this.listeners.indexOf(entry);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /**
   * How long a client refused because of backpressure should wait before retrying, in ms: 0 while inactive;
   * while active, the time left in the cooldown (the earliest moment the gate could clear), but never less than
   * `minRetryAfterMs`.
   */
  retryAfterMs(): number {
    if (!this.active) return 0;
    const remaining =
      this.lastTransitionAt === undefined ? 0 : this.lastTransitionAt + this.cooldownMs - this.clock.now();
    return Math.max(Math.ceil(remaining), this.minRetryAfterMs);
  }

  /**
   * Waits until backpressure is inactive: resolves at once when it already is, otherwise at the next deactivation.
   * @throws OmniRelayError, as a rejection: `cancelled` / `resourcelease.cancelled` when `signal` aborts (also when
   * it is already aborted); `deadline-exceeded` / `resourcelease.deadline_exceeded` when its reason is a
   * `TimeoutError`; the reason itself when it is an `OmniRelayError`; `unavailable` / `resourcelease.queue.closed`
   * when the controller is closed while active.
   */
  waitUntilInactive(options: WaitUntilInactiveOptions = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    if (!this.active) return Promise.resolve();
    if (this.closed) return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        reject(abortError(signal?.reason));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Stops the deferred re-evaluation timer; later {@link observe} calls do nothing. Pending
   * {@link waitUntilInactive} calls reject with `unavailable` / `resourcelease.queue.closed` if the gate is still
   * active. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelDeferred();
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter.reject(closedError());
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  private evaluate(pending: number): void {
    const target = pending >= this.highWatermark ? true : pending <= this.lowWatermark ? false : this.active;
    if (target === this.active) {
      this.cancelDeferred();
      return;
    }
    const now = this.clock.now();
    if (this.lastTransitionAt !== undefined) {
      const remaining = this.lastTransitionAt + this.cooldownMs - now;
      if (remaining > 0) {
        this.scheduleDeferred(remaining);
        return;
      }
    }
    this.transition(target, pending, now);
  }

  private transition(active: boolean, pending: number, now: number): void {
    this.cancelDeferred();
    this.active = active;
    this.lastTransitionAt = now;
    this.transitionCount++;
    const signal: ResourceLeaseBackpressureSignal = {
      isActive: active,
      pendingCount: pending,
      observedAt: now,
      highWatermark: this.highWatermark,
      lowWatermark: this.lowWatermark,
    };
    this.latestSignal = signal;
    if (!active) {
      const waiters = [...this.waiters];
      this.waiters.clear();
      for (const waiter of waiters) waiter.resolve();
    }
    this.deliver(signal);
  }

  // The end of the cooldown only moves when a transition happens, and a transition cancels the timer, so a timer
  // that is already scheduled is always due at the right moment: one timer is enough.
  private scheduleDeferred(delayMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = this.clock.setTimeout(() => this.onDeferred(), delayMs);
  }

  private cancelDeferred(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onDeferred(): void {
    this.timer = undefined;
    if (this.closed) return;
    let pending: number;
    try {
      pending = this.readPending();
    } catch (err) {
      this.logger.error({ err }, "Reading the pending count for a deferred backpressure evaluation failed.");
      return;
    }
    if (typeof pending !== "number" || !Number.isFinite(pending) || pending < 0) {
      this.logger.error({ pendingCount: String(pending) }, "pendingCount() returned an invalid value.");
      return;
    }
    // A timer may fire a little before the cooldown ends on a real clock; evaluate() then schedules the rest.
    this.evaluate(pending);
  }

  // Listeners may call back into observe(); queueing keeps every listener seeing transitions in order.
  private deliver(signal: ResourceLeaseBackpressureSignal): void {
    this.deliveries.push(signal);
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let next = this.deliveries.shift(); next !== undefined; next = this.deliveries.shift()) {
        for (const entry of [...this.listeners]) this.notify(entry.listener, next);
      }
    } finally {
      this.delivering = false;
    }
  }

  private notify(listener: ResourceLeaseBackpressureListener, signal: ResourceLeaseBackpressureSignal): void {
    const fail = (err: unknown): void => {
      this.logger.error({ err, isActive: signal.isActive }, "A backpressure listener failed.");
    };
    try {
      const result = listener.onBackpressureChanged(signal);
      if (result !== undefined && typeof (result as Promise<void>).then === "function") {
        (result as Promise<void>).then(undefined, fail);
      }
    } catch (err) {
      fail(err);
    }
  }
}

function checkListener(listener: ResourceLeaseBackpressureListener): ResourceLeaseBackpressureListener {
  if (typeof listener?.onBackpressureChanged !== "function") {
    throw OmniRelayError.invalidOption(
      "listeners",
      "A backpressure listener must have an onBackpressureChanged method.",
    );
  }
  return listener;
}

function abortError(reason: unknown): OmniRelayError {
  if (isOmniRelayError(reason)) return reason;
  const name = typeof reason === "object" && reason !== null ? (reason as { name?: unknown }).name : undefined;
  if (name === "TimeoutError") {
    return new OmniRelayError({
      status: "deadline-exceeded",
      code: ErrorCodes.resourceLease.deadlineExceeded,
      message: "The deadline passed while waiting for backpressure to clear.",
      cause: reason,
    });
  }
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.resourceLease.cancelled,
    message: "Waiting for backpressure to clear was cancelled.",
    cause: reason,
  });
}

function closedError(): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.resourceLease.queueClosed,
    message: "The backpressure controller was closed.",
  });
}
