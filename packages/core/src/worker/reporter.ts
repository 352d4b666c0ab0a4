import type { Logger } from "../contracts/health.js";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";
import { EventStream, type ResourceLeaseWorkerEvent, type ResourceLeaseWorkerEventsOptions } from "./events.js";

/** An `error` event. Internal. */
export type WorkerErrorEvent = Extract<ResourceLeaseWorkerEvent, { type: "error" }>;

/** Names an item in events and logs (never the lease id). Internal. */
export interface ItemRef {
  readonly sequenceId: number;
  readonly attempt: number;
}

/**
 * Counts, logs and publishes what a worker does: the event stream, the `onError` callback (whose exceptions and
 * rejections never escape) and the counters behind `stats()`. Internal.
 */
export class WorkerReporter {
  readonly counts = { leased: 0, completed: 0, failed: 0, fenced: 0, errors: 0 };
  private readonly stream = new EventStream<ResourceLeaseWorkerEvent>();
  private readonly logger: Logger;
  private readonly onError: ((event: WorkerErrorEvent) => void) | undefined;

  constructor(options: { logger: Logger; onError: ((event: WorkerErrorEvent) => void) | undefined }) {
    this.logger = options.logger;
    this.onError = options.onError;
  }

  iterate(options?: ResourceLeaseWorkerEventsOptions): AsyncIterableIterator<ResourceLeaseWorkerEvent> {
    return this.stream.iterate(options);
  }

  end(): void {
    this.stream.end();
  }

  /** Records a counted event: leased, completed, failed or fenced. */
  record(event: Exclude<ResourceLeaseWorkerEvent, WorkerErrorEvent>): void {
    this.counts[event.type]++;
    if (event.type === "fenced") {
      const { sequenceId, attempt } = event;
      this.logger.warn({ sequenceId, attempt, code: event.error.code }, "ResourceLeaseWorker lost a lease.");
    }
    this.stream.push(event);
  }

  /** Records a leased item whose handler runs (the event is built only when someone reads the events). */
  leased(grant: ResourceLeaseGrant): void {
    this.counts.leased++;
    if (this.stream.active) this.stream.push({ type: "leased", grant });
  }

  /** Records an acknowledged completion (the event is built only when someone reads the events). */
  completed(sequenceId: number, attempt: number): void {
    this.counts.completed++;
    if (this.stream.active) this.stream.push({ type: "completed", sequenceId, attempt });
  }

  /** Records a failed call, retried or given up. */
  error(event: WorkerErrorEvent): void {
    this.counts.errors++;
    this.logger.warn(
      { operation: event.operation, code: event.error.code, sequenceId: event.sequenceId, retryInMs: event.retryInMs },
      `ResourceLeaseWorker ${event.operation} failed: ${event.error.message}`,
    );
    this.stream.push(event);
    if (!this.onError) return;
    try {
      const result: unknown = this.onError(event);
      if (result instanceof Promise) result.catch((error: unknown) => this.callbackFailed(error));
    } catch (error) {
      this.callbackFailed(error);
    }
  }

  /** Records that a lease was lost. */
  lost(item: ItemRef, reason: OmniRelayError): void {
    this.record({ type: "fenced", sequenceId: item.sequenceId, attempt: item.attempt, error: reason });
  }

  private callbackFailed(error: unknown): void {
    this.logger.error({ err: error }, "ResourceLeaseWorker onError callback failed.");
  }
}
