import type { LifecycleState } from "../contracts/lifecycle.js";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { TimerHandle } from "../util/clock.js";
import { numberOption } from "../wire/options.js";
import { CompleteBatcher } from "./complete-batcher.js";
import { Conditions } from "./conditions.js";
import { retryAfter } from "./errors.js";
import type { ResourceLeaseWorkerEvent, ResourceLeaseWorkerEventsOptions } from "./events.js";
import { LeaseRun, type LeaseRunHost } from "./lease-run.js";
import { handBackReason, LiveLeases } from "./live-leases.js";
import { LoopWaker } from "./loop-waker.js";
import {
  type ResolvedWorkerOptions,
  type ResourceLeaseWorkerCloseOptions,
  type ResourceLeaseWorkerOptions,
  type ResourceLeaseWorkerStats,
  resolveWorkerOptions,
} from "./options.js";
import { WorkerReporter } from "./reporter.js";
import { renewingClient, SessionDriver } from "./session-driver.js";
import { type Delivery, deliver, failRequest, itemOf } from "./settle.js";

const noop = () => {};

/** How long close waits for a lease call in flight to come back before cancelling it (see `shutdown`). */
const CLOSE_LEASE_SETTLE_MS = 250;

/**
 * Leases items through a client and runs a handler for each, up to `concurrency` at once: renews each lease while its
 * handler runs, completes (batched) or fails the item when the handler settles, and aborts the handler's signal as
 * soon as the lease is lost, so no handler runs on unaware after another worker may have taken its item.
 *
 * The first deadline of a lease comes from `grant.leaseExpiresAt` (keep clocks in sync); every renewal uses the
 * server-measured `remainingMs`, which clock skew cannot inflate.
 *
 * Across a failover, give it a `ResourceLeaseClient` with several `endpoints`: its calls follow the shard's owner,
 * and a `resourcelease.not_owner` that still reaches the worker is transient (retried while the lease lasts), never a
 * lost lease — the new owner holds the old owner's leases under the same tokens.
 */
export class ResourceLeaseWorker implements AsyncDisposable {
  private readonly o: ResolvedWorkerOptions;
  private current: LifecycleState = "idle";
  private readonly runs = new Set<LeaseRun>();
  /** Leased ahead (`prefetch`), oldest first, waiting for a free slot. */
  private readonly held: LeaseRun[] = [];
  /** Every lease from grant until settled, by item: a grant of one already here never runs a second handler. */
  private readonly live: LiveLeases;
  /** Completions and fails being delivered (close waits for them). */
  private settling = 0;
  private readonly conditions = new Conditions();
  private readonly reporter: WorkerReporter;
  private readonly batcher: CompleteBatcher;
  private readonly host: LeaseRunHost;
  /** Present when the worker leases over a session stream (`session` option and a client that can open one). */
  private readonly driver: SessionDriver | undefined;
  private readonly loopAbort = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();
  private readonly waker: LoopWaker;
  private closing: Promise<void> | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed: () => void = noop;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`. */
  constructor(options: ResourceLeaseWorkerOptions) {
    this.o = resolveWorkerOptions(options);
    this.waker = new LoopWaker(this.o.clock);
    this.live = new LiveLeases(this.o.logger);
    this.reporter = new WorkerReporter({ logger: this.o.logger, onError: this.o.onError });
    this.batcher = new CompleteBatcher({ client: this.o.client, clock: this.o.clock, batchMs: this.o.completeBatchMs });
    this.closedPromise = new Promise<void>((resolve) => {
      this.resolveClosed = resolve;
    });
    this.host = {
      client: renewingClient(this.o.client, () => this.driver?.session),
      clock: this.o.clock,
      logger: this.o.logger,
      heartbeatFraction: this.o.heartbeatFraction,
      safetyMarginMs: this.o.safetyMarginMs,
      onLost: (run, reason) => this.reporter.lost(itemOf(run), reason),
      onRenewalError: (run, error, retryInMs) =>
        this.reporter.error({
          type: "error",
          operation: "heartbeat",
          error,
          ...itemOf(run),
          ...(retryInMs !== undefined ? { retryInMs } : {}),
        }),
    };
    this.driver = this.o.session
      ? new SessionDriver({
          options: this.o,
          running: () => this.current === "running",
          free: () => this.free(),
          accept: (grants) => this.accept(grants),
          failed: (error, retryInMs) => this.reporter.error({ type: "error", operation: "lease", error, retryInMs }),
          pause: (delayMs) => this.pause(delayMs),
        })
      : undefined;
  }

  /**
   * Current lifecycle state: `idle` until {@link start}, `running`, `draining` while {@link close} waits for handlers,
   * then `stopped`. (`start()` is synchronous, so a worker is never `starting`.)
   */
  get state(): LifecycleState {
    return this.current;
  }

  /**
   * Starts leasing in the background. Idempotent while running.
   * @throws OmniRelayError failed-precondition `resourcelease.worker.closed` after `close()`.
   */
  start(): this {
    if (this.current === "running") return this;
    if (this.current !== "idle") {
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.worker.closed,
        message: "The worker is closed; build a new one.",
      });
    }
    this.current = "running";
    const driver = this.driver;
    const leasing = driver ? driver.run().then((r) => (r === "unsupported" ? this.loop() : undefined)) : this.loop();
    this.loopDone = leasing.catch((error: unknown) => {
      this.o.logger.error({ err: error }, "ResourceLeaseWorker loop stopped unexpectedly.");
    });
    return this;
  }

  /**
   * Stops leasing (a lease call in flight gets up to 250 ms to come back, and what it brings goes straight back to the
   * queue), returns held (`prefetch`) items to the queue, waits up to `graceMs` for running handlers, then aborts the
   * rest (signal reason `resourcelease.worker.shutting_down`) and fails their items with requeue; resolves when every
   * call has settled.
   * A handler that ignores its signal is left behind: its result is ignored. Idempotent.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a bad `graceMs`.
   */
  async close(options: ResourceLeaseWorkerCloseOptions = {}): Promise<void> {
    const graceMs = numberOption("graceMs", options.graceMs, { min: 0, fallback: 10_000 });
    if (this.closing) return this.closing;
    if (this.current === "idle") {
      this.closing = Promise.resolve();
      this.finishClose();
      return;
    }
    this.current = "draining";
    this.closing = this.shutdown(graceMs);
    return this.closing;
  }

  /** Resolves once the worker is closed. */
  closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Current counters. */
  stats(): ResourceLeaseWorkerStats {
    return { inFlight: this.runs.size + this.held.length, ...this.reporter.counts };
  }

  /** Events as they happen, for as long as the worker lives (the iteration ends after close). */
  events(options?: ResourceLeaseWorkerEventsOptions): AsyncIterableIterator<ResourceLeaseWorkerEvent> {
    return this.reporter.iterate(options);
  }

  /** `close()` with the default grace, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async loop(): Promise<void> {
    const { client, clock, peerId, leaseWaitMs } = this.o;
    let failures = 0;
    while (this.current === "running") {
      const free = this.free();
      // Refill in batches: while more than half the prefetch is still held, the slots have work; wait for more room
      // rather than sending a lease call for each slot that frees up.
      if (free <= 0 || this.held.length > this.o.prefetch / 2) {
        await this.pause();
        continue;
      }
      const startedAt = clock.now();
      let grants: ResourceLeaseGrant[];
      try {
        // A server caps one lease call at its maxBatchSize (1000 by default); never ask for more.
        const maxItems = Math.min(free, 1000);
        grants = await client.lease({ peerId, waitMs: leaseWaitMs, maxItems }, { signal: this.loopAbort.signal });
        if (!Array.isArray(grants)) throw new TypeError("lease must resolve to an array of grants.");
      } catch (thrown) {
        if (this.current !== "running") return;
        failures++;
        const ceiling = Math.min(this.o.retryMaxDelayMs, this.o.retryInitialDelayMs * 2 ** Math.min(failures - 1, 30));
        const error = OmniRelayError.from(thrown);
        // A refusal that says when to come back (an ejected peer, backpressure) is not retried before then.
        const backoff = Math.max(1, Math.round(ceiling / 2 + (this.o.random() * ceiling) / 2));
        const retryInMs = Math.max(backoff, retryAfter(error));
        this.reporter.error({ type: "error", operation: "lease", error, retryInMs });
        await this.pause(retryInMs);
        continue;
      }
      failures = 0;
      this.accept(grants);
      if (grants.length === 0 && this.current === "running") {
        const elapsed = clock.now() - startedAt;
        if (leaseWaitMs === 0) await this.pause(100);
        else if (elapsed < leaseWaitMs / 2) await this.pause(Math.min(1_000, Math.max(10, leaseWaitMs / 10)));
      }
    }
  }

  /** Free slots: concurrency plus prefetch, less the items running and held. */
  private free(): number {
    return this.o.concurrency + this.o.prefetch - this.runs.size - this.held.length;
  }

  /**
   * Runs or holds leased items while slots are free; the rest (or all, once closing) go straight back to the queue.
   * A grant of a lease already here is dropped; one of an item whose handler runs (or is held) under another lease
   * is handed back (see `GrantVerdict`): one item never has two handlers at once, whatever a dispatcher sends.
   */
  private accept(grants: readonly ResourceLeaseGrant[]): void {
    let room = this.current === "running" ? Math.max(0, this.free()) : 0;
    for (const grant of grants) {
      const verdict = this.live.verdict(grant, this.runs, this.held);
      if (verdict === "duplicate") continue;
      const run = new LeaseRun(grant, this.host);
      if (verdict === "take") this.live.add(run);
      // A conflict takes no slot (`room` is only counted down for the others).
      if (verdict === "conflict" || room-- <= 0) {
        this.reporter.counts.leased++; // counted, but no handler ever sees it
        this.handBack(run, verdict === "conflict");
      } else {
        this.reporter.leased(grant);
        if (this.runs.size < this.o.concurrency) this.startRun(run);
        else this.held.push(run);
      }
    }
  }

  /** Waits for a slot to free up, for close, or for `delayMs`. */
  private pause(delayMs?: number): Promise<void> {
    return this.waker.pause(delayMs);
  }

  /**
   * Runs the handler (at once) and settles the item when it returns or throws. Plain callbacks rather than an async
   * function: a busy worker's per-item promises were a measurable share of its CPU.
   */
  private startRun(run: LeaseRun): void {
    this.runs.add(run);
    let result: unknown;
    try {
      result = this.o.handler(run.grant, run.context);
    } catch (thrown) {
      result = Promise.reject(thrown);
    }
    Promise.resolve(result).then(
      () => this.handlerDone(run, false, undefined),
      (thrown: unknown) => this.handlerDone(run, true, thrown),
    );
  }

  /** Starts held items while slots are free (skipping any whose lease was lost while held). */
  private startHeld(): void {
    while (this.current === "running" && this.runs.size < this.o.concurrency && this.held.length > 0) {
      const run = this.held.shift() as LeaseRun;
      if (run.phase === "running") this.startRun(run);
      else this.live.forget(run);
    }
  }

  private handlerDone(run: LeaseRun, failed: boolean, error: unknown): void {
    try {
      this.runs.delete(run);
      this.startHeld();
      this.waker.wakeSoon();
      this.driver?.refill(); // the credit travels in the same frame as this item's completion
      this.conditions.notify();
      if (!run.settle()) {
        this.live.forget(run);
        if (run.phase === "lost") {
          this.o.logger.debug(itemOf(run), "A handler settled after its lease was lost; its result is ignored.");
        }
        return;
      }
      const settled = failed ? this.failRun(run, error) : this.completeRun(run);
      this.track(settled.finally(() => this.live.forget(run)));
    } catch (thrown) {
      this.o.logger.error(
        { err: thrown, sequenceId: run.grant.sequenceId },
        "ResourceLeaseWorker failed to settle an item.",
      );
    }
  }

  /** Completes on the session when one is open (one promise per item), else batched; retried as {@link deliver} says. */
  private completeRun(run: LeaseRun): Promise<void> {
    const session = this.driver?.session;
    if (!session) return this.completeSlowly(run);
    return session.complete(run.token).then(
      () => this.reporter.completed(run.token.sequenceId, run.token.attempt),
      (thrown: unknown) => this.completeSlowly(run, { thrown }),
    );
  }

  private async completeSlowly(run: LeaseRun, firstError?: { readonly thrown: unknown }): Promise<void> {
    const send = async () => {
      const session = this.driver?.session;
      if (session) return session.complete(run.token);
      const outcome = await this.batcher.complete(run.token);
      if (!outcome.ok) throw outcome.error;
    };
    const context = { operation: "complete", clock: this.o.clock, reporter: this.reporter, firstError } as const;
    const r = await deliver(run, send, context);
    if (!r.ok) return;
    this.reporter.completed(run.token.sequenceId, run.token.attempt);
  }

  private async failRun(run: LeaseRun, error: unknown): Promise<void> {
    const request = failRequest(run, error, { failOnError: this.o.failOnError, reporter: this.reporter });
    await this.sendFail(run, request, error);
  }

  private async sendFail(
    run: LeaseRun,
    request: { requeue: boolean; reason: string; errorCode?: string; delayMs?: number },
    error: unknown,
  ): Promise<void> {
    const send = () => this.driver?.session?.fail(run.token, request) ?? this.o.client.fail(run.token, request);
    const r = await this.deliver(run, "fail", send);
    if (!r.ok) return;
    this.reporter.record({ type: "failed", ...itemOf(run), outcome: r.value, error });
  }

  /** Fails a lease whose handler we gave up on (or never ran) so the item is offered again at once. */
  private release(run: LeaseRun, reason: OmniRelayError, text: string): void {
    const request = { requeue: true, reason: text, errorCode: reason.code, delayMs: 0 };
    this.track(this.sendFail(run, request, reason).finally(() => this.live.forget(run)));
  }

  /**
   * Returns a leased item no handler will run (no free slot, closing, or — `conflict` — its item already has a handler
   * under another lease) to the queue at once.
   */
  private handBack(run: LeaseRun, conflict = false): void {
    const { reason, text } = handBackReason(this.current !== "running", conflict);
    if (run.abandon(reason)) this.release(run, reason, text);
    else this.live.forget(run);
  }

  /** Sends a complete or fail, retrying transient errors while the lease lasts (see {@link deliver}). */
  private deliver<T>(run: LeaseRun, operation: "complete" | "fail", send: () => Promise<T>): Promise<Delivery<T>> {
    return deliver(run, send, { operation, clock: this.o.clock, reporter: this.reporter });
  }

  private async shutdown(graceMs: number): Promise<void> {
    // A lease call in flight may be answering with grants right now (at once, when items are pending). Cancelling it
    // drops that answer: the server has committed the grants, and they would sit leased to nobody until their leases
    // expire. So give it a moment to come back (the loop then hands its grants straight back), and only then cancel
    // what is left: a long-poll with nothing to grant. A worker on a session has no such call: its driver stops at
    // once (the session stays open for the settlements below), so its loop is done and nothing is waited for here.
    this.waker.wake();
    this.driver?.stop();
    let timer: TimerHandle | undefined;
    await Promise.race([
      this.loopDone,
      new Promise<void>((resolve) => {
        timer = this.o.clock.setTimeout(resolve, Math.min(this.o.leaseWaitMs, CLOSE_LEASE_SETTLE_MS));
      }),
    ]);
    if (timer !== undefined) this.o.clock.clearTimeout(timer);
    this.loopAbort.abort(
      new OmniRelayError({
        status: "cancelled",
        code: ErrorCodes.worker.shuttingDown,
        message: "The worker is shutting down.",
      }),
    );
    this.waker.wake();
    // The session grants nothing more: what it granted before its answer arrives is handed back below or as it arrives.
    await this.driver?.drain(CLOSE_LEASE_SETTLE_MS);
    await this.loopDone;
    // Held items never started: they go back to the queue now rather than after the grace period.
    for (const run of this.held.splice(0)) this.handBack(run);
    if (this.runs.size > 0) {
      let timer: TimerHandle | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = this.o.clock.setTimeout(resolve, graceMs);
      });
      await Promise.race([this.conditions.until(() => this.runs.size === 0), graceOver]);
      if (timer !== undefined) this.o.clock.clearTimeout(timer);
      const reason = new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.worker.shuttingDown,
        message: "The worker shut down before the handler finished.",
      });
      for (const run of [...this.runs]) {
        this.runs.delete(run);
        // A lost run is not ours to fail; an abandoned one goes back to the queue.
        if (run.abandon(reason)) this.release(run, reason, "worker shutting down");
        else this.live.forget(run);
      }
      this.conditions.notify();
    }
    this.batcher.flush();
    await this.conditions.until(() => this.settling === 0);
    this.driver?.close();
    this.finishClose();
  }

  private finishClose(): void {
    this.current = "stopped";
    this.reporter.end();
    this.resolveClosed();
  }

  private track(task: Promise<void>): void {
    this.settling++;
    task.then(this.untrack, this.untrackFailed);
  }

  private readonly untrack = (): void => {
    this.settling--;
    this.conditions.notify();
  };

  private readonly untrackFailed = (error: unknown): void => {
    this.o.logger.error({ err: error }, "ResourceLeaseWorker failed to settle an item.");
    this.untrack();
  };
}
