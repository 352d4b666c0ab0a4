import { type Logger, silentLogger } from "../contracts/health.js";
import type { LifecycleState } from "../contracts/lifecycle.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock } from "../util/clock.js";

/** Something that takes calls and is started, then drained: an `HttpInbound`, a `GrpcInbound`, a replication hub. */
export interface LifecycleInbound {
  /** Binds and serves. */
  start(): Promise<unknown>;
  /** Refuses new calls, lets the calls in flight finish for up to `graceMs`, then cuts the rest. Idempotent. */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Something closed once no call needs it any more: a queue or its component, a durable log, a replicator, a store,
 * a control plane. One with a `start()` (a log follower catching up, a replicator connecting) is started before any
 * inbound takes a call.
 */
export interface LifecycleComponent {
  /** Starts it (awaited when it returns a promise). */
  start?(): unknown;
  /**
   * Told that the group begins to stop, before its inbounds drain: ends what would otherwise hold the drain for the
   * whole grace (a queue's long polls answer at once, empty).
   */
  stopping?(): void;
  /** Closes it (awaited when it returns a promise). */
  close(): unknown;
}

/** Options of {@link LifecycleGroup.stop} and `Dispatcher.stop`. */
export interface LifecycleStopOptions {
  /**
   * How long calls in flight may take to finish before they are cut, for every inbound and then for what is left.
   * @defaultValue each inbound's own grace (`HttpInbound` 10 s, `GrpcInbound` its `shutdownGraceMs`), and 10000 for
   * the drain hook (calls made without an inbound)
   */
  readonly graceMs?: number;
}

/** Options of a {@link LifecycleGroup}. */
export interface LifecycleGroupOptions {
  /**
   * Runs after every inbound has closed and before the first component closes, with the time left of the grace (at
   * least 0): the dispatcher waits here for calls that came without an inbound.
   */
  readonly drain?: (remainingMs: number) => Promise<void>;
  /** Measures the grace. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** Where a member that fails to close is reported. @defaultValue silentLogger */
  readonly logger?: Logger;
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Starts and stops a process's parts in the one right order, so applications do not write it by hand. `start()`
 * starts the components that have a `start()` (in the order added), then the inbounds; `stop()` closes every inbound
 * at once (each refuses new calls and drains its own, within the grace), then closes the components in reverse order
 * (a queue before the log under it, the log before the store its follower writes to). Both are idempotent; `stop()`
 * before `start()` closes the components it was given; a failed `start()` stops what it had started and leaves the
 * group `stopped`. The `Dispatcher` has one; use one directly where there is no dispatcher (the replication hub app).
 */
export class LifecycleGroup implements AsyncDisposable {
  private readonly options: LifecycleGroupOptions;
  private readonly inbounds: LifecycleInbound[] = [];
  private readonly components: LifecycleComponent[] = [];
  private current: LifecycleState = "idle";
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: LifecycleGroupOptions = {}) {
    this.options = options;
  }

  /** Where the group stands. */
  get state(): LifecycleState {
    return this.current;
  }

  /**
   * Adds an inbound, started by {@link start} and drained by {@link stop}. Adding one twice adds it once.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` once the group has started or stopped
   * (start the inbound yourself, or add it before `start()`).
   */
  addInbound(inbound: LifecycleInbound): this {
    if (this.inbounds.includes(inbound)) return this;
    if (this.current !== "idle") throw stateError(`add an inbound to a group that is ${this.current}`);
    this.inbounds.push(inbound);
    return this;
  }

  /**
   * Adds a component, closed by {@link stop} after the inbounds (the last added first). Adding one twice adds it once.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` once the group is draining or stopped, or
   * for a component with a `start()` once the group has started.
   */
  addComponent(component: LifecycleComponent): this {
    if (this.components.includes(component)) return this;
    const late = this.current === "draining" || this.current === "stopped";
    if (late || (typeof component.start === "function" && this.current !== "idle")) {
      throw stateError(`add a component to a group that is ${this.current}`);
    }
    this.components.push(component);
    return this;
  }

  /**
   * Starts the components that have a `start()`, in order, then the inbounds. Idempotent while starting or running.
   * If anything fails to start, everything is stopped and the group is `stopped`; the error is rethrown.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` after `stop()`; whatever a member threw.
   */
  start(): Promise<void> {
    if (this.current === "running") return Promise.resolve();
    if (this.starting) return this.starting;
    if (this.current !== "idle") return Promise.reject(stateError(`start a group that is ${this.current}`));
    this.current = "starting";
    this.starting = this.startAll().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /**
   * Stops taking calls and closes everything: the inbounds drain at once (each within `graceMs`), then the `drain`
   * hook waits for the rest of the calls, then the components close in reverse order. A member that fails to close
   * is logged and the others still close; the first such failure is rethrown at the end. Idempotent; waits for a
   * `start()` in progress first.
   */
  stop(options: LifecycleStopOptions = {}): Promise<void> {
    if (!this.stopping) this.stopping = this.stopAll(options.graceMs);
    return this.stopping;
  }

  /** `stop()` with the default grace, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async startAll(): Promise<void> {
    try {
      for (const component of this.components) {
        if (this.stopping) break;
        if (typeof component.start === "function") await component.start();
      }
      for (const inbound of this.inbounds) {
        if (this.stopping) break;
        await inbound.start();
      }
    } catch (error) {
      this.current = "draining";
      await this.closeAll(0).catch(() => undefined);
      this.current = "stopped";
      throw error;
    }
    if (!this.stopping) this.current = "running";
  }

  private async stopAll(graceMs: number | undefined): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.current === "stopped") return;
    this.current = "draining";
    try {
      await this.closeAll(graceMs);
    } finally {
      this.current = "stopped";
    }
  }

  private async closeAll(graceMs: number | undefined): Promise<void> {
    const clock = this.options.clock ?? systemClock;
    const logger = this.options.logger ?? silentLogger;
    const began = clock.now();
    const failures: unknown[] = [];
    for (const component of this.components) {
      try {
        component.stopping?.();
      } catch (error) {
        failures.push(error);
      }
    }
    // Without a grace of its own, each inbound drains within the one it was configured with.
    const options = graceMs === undefined ? {} : { graceMs };
    const closed = await Promise.allSettled(this.inbounds.map((inbound) => inbound.close(options)));
    for (const outcome of closed) if (outcome.status === "rejected") failures.push(outcome.reason);
    if (this.options.drain) {
      try {
        await this.options.drain(Math.max(0, (graceMs ?? DEFAULT_GRACE_MS) - (clock.now() - began)));
      } catch (error) {
        failures.push(error);
      }
    }
    for (const component of [...this.components].reverse()) {
      try {
        await component.close();
      } catch (error) {
        failures.push(error);
      }
    }
    for (const error of failures) logger.error({ err: error }, "A part failed to stop cleanly.");
    if (failures.length > 0) throw failures[0];
  }
}

function stateError(what: string) {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.rpc.lifecycleState,
    message: `Cannot ${what}.`,
  });
}
