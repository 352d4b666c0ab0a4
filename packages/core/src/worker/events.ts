import type { ResourceLeaseGrant } from "../contracts/payload.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";

/** The call an `error` event is about. */
export type ResourceLeaseWorkerOperation = "lease" | "heartbeat" | "complete" | "fail" | "failOnError";

/** Something that happened in a {@link ResourceLeaseWorker}; `sequenceId`/`attempt` name the item. */
export type ResourceLeaseWorkerEvent =
  /** An item was leased and its handler started. */
  | { readonly type: "leased"; readonly grant: ResourceLeaseGrant }
  /** The server acknowledged the completion. */
  | { readonly type: "completed"; readonly sequenceId: number; readonly attempt: number }
  /** The handler failed (or outlived close's grace) and the server acknowledged the `fail`. */
  | {
      readonly type: "failed";
      readonly sequenceId: number;
      readonly attempt: number;
      readonly outcome: ResourceLeaseFailOutcome;
      /** The handler's error, or the shutdown error. */
      readonly error: unknown;
    }
  /**
   * The worker lost the lease: a renewal or completion was rejected (`resourcelease.lease.fenced`), the deadline
   * arrived without renewal (`resourcelease.lease.expired_locally`), or a completion could not be delivered in time.
   * The worker does not complete or fail a lost lease.
   */
  | { readonly type: "fenced"; readonly sequenceId: number; readonly attempt: number; readonly error: OmniRelayError }
  /** A call failed; the worker retries (lease, heartbeat, complete, fail) or falls back (failOnError). */
  | {
      readonly type: "error";
      readonly operation: ResourceLeaseWorkerOperation;
      readonly error: OmniRelayError;
      readonly sequenceId?: number;
      readonly attempt?: number;
      /** When the worker will try again, if it will. */
      readonly retryInMs?: number;
    };

/** Options of {@link ResourceLeaseWorker.events}. */
export interface ResourceLeaseWorkerEventsOptions {
  /** Ends the iteration. */
  readonly signal?: AbortSignal;
  /** Events kept for a slow reader; older ones are dropped first. @defaultValue 1024 */
  readonly bufferSize?: number;
}

interface Subscriber<T> {
  readonly buffer: T[];
  readonly limit: number;
  wake: (() => void) | undefined;
  done: boolean;
}

/**
 * Fan-out of events to async iterators, each with its own bounded buffer. Nothing is buffered without a reader,
 * and a reader that stops never holds anything back. Internal.
 */
export class EventStream<T> {
  private readonly subscribers = new Set<Subscriber<T>>();
  private ended = false;

  /** Someone reads the events: until then, callers need not build them. */
  get active(): boolean {
    return this.subscribers.size > 0;
  }

  push(event: T): void {
    for (const s of this.subscribers) {
      s.buffer.push(event);
      if (s.buffer.length > s.limit) s.buffer.shift();
      this.wake(s);
    }
  }

  /** Ends every iteration once its buffer is read; later iterations end at once. */
  end(): void {
    this.ended = true;
    for (const s of this.subscribers) {
      s.done = true;
      this.wake(s);
    }
  }

  iterate(options: ResourceLeaseWorkerEventsOptions = {}): AsyncIterableIterator<T> {
    const limit = Math.max(1, Math.floor(options.bufferSize ?? 1024));
    const sub: Subscriber<T> = { buffer: [], limit, wake: undefined, done: this.ended };
    const signal = options.signal;
    const stop = () => {
      sub.done = true;
      sub.buffer.length = 0;
      this.subscribers.delete(sub);
      signal?.removeEventListener("abort", stop);
      this.wake(sub);
    };
    if (!sub.done) this.subscribers.add(sub);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
    const iterator: AsyncIterableIterator<T> = {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          const value = sub.buffer.shift();
          if (value !== undefined) return { value, done: false };
          if (sub.done) {
            stop();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        stop();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  private wake(s: Subscriber<T>): void {
    const wake = s.wake;
    s.wake = undefined;
    wake?.();
  }
}
