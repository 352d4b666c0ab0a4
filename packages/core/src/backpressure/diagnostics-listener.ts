import type { ResourceLeaseBackpressureListener, ResourceLeaseBackpressureSignal } from "../contracts/health.js";
import { integerOption } from "../wire/options.js";

/** Options of {@link ResourceLeaseBackpressureDiagnosticsListener}. */
export interface ResourceLeaseBackpressureDiagnosticsListenerOptions {
  /**
   * How many signals {@link ResourceLeaseBackpressureDiagnosticsListener.history} keeps, and how many each
   * {@link ResourceLeaseBackpressureDiagnosticsListener.updates} subscriber buffers before dropping the oldest.
   * An integer >= 1.
   * @defaultValue 16
   */
  readonly historyCapacity?: number;
}

/** Options of {@link ResourceLeaseBackpressureDiagnosticsListener.updates}. */
export interface BackpressureUpdatesOptions {
  /** Ends the iteration when it aborts. */
  readonly signal?: AbortSignal;
}

type Next = IteratorResult<ResourceLeaseBackpressureSignal, undefined>;

const done: Next = { done: true, value: undefined };

/** One `updates()` caller: a bounded buffer that drops its oldest signal when full. */
class Subscriber implements AsyncIterableIterator<ResourceLeaseBackpressureSignal> {
  private readonly buffer: ResourceLeaseBackpressureSignal[] = [];
  private readonly waiting: ((result: Next) => void)[] = [];
  private ended = false;
  private closing = false;

  constructor(
    private readonly capacity: number,
    private readonly signal: AbortSignal | undefined,
    private readonly detach: (subscriber: Subscriber) => void,
  ) {
    if (signal?.aborted) this.end();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  push(value: ResourceLeaseBackpressureSignal): void {
    if (this.ended || this.closing) return;
    const waiting = this.waiting.shift();
    if (waiting !== undefined) {
      waiting({ done: false, value });
      return;
    }
    if (this.buffer.length >= this.capacity) this.buffer.shift();
    this.buffer.push(value);
  }

  /** Ends after the buffered signals are read. */
  finish(): void {
    this.closing = true;
    if (this.buffer.length === 0) this.end();
  }

  next(): Promise<Next> {
    const value = this.buffer.shift();
    if (value !== undefined) {
      if (this.closing && this.buffer.length === 0) this.end();
      return Promise.resolve({ done: false, value });
    }
    if (this.ended) return Promise.resolve(done);
    return new Promise<Next>((resolve) => {
      this.waiting.push(resolve);
    });
  }

  return(): Promise<Next> {
    this.end();
    return Promise.resolve(done);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ResourceLeaseBackpressureSignal> {
    return this;
  }

  private readonly onAbort = (): void => {
    this.end();
  };

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.buffer.length = 0;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.detach(this);
    for (const resolve of this.waiting.splice(0)) resolve(done);
  }
}

/**
 * Keeps the latest backpressure signal and a short history for diagnostics endpoints, and streams signals to any
 * number of independent subscribers. Never throws from {@link onBackpressureChanged}.
 */
export class ResourceLeaseBackpressureDiagnosticsListener implements ResourceLeaseBackpressureListener, Disposable {
  /** Size of the history and of each subscriber's buffer. */
  readonly historyCapacity: number;
  private readonly recent: ResourceLeaseBackpressureSignal[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private latestSignal: ResourceLeaseBackpressureSignal | undefined;
  private closed = false;

  /**
   * Creates an empty listener.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option:
   * historyCapacity`) when `historyCapacity` is not an integer >= 1.
   */
  constructor(options: ResourceLeaseBackpressureDiagnosticsListenerOptions = {}) {
    this.historyCapacity = integerOption("historyCapacity", options.historyCapacity ?? 16, { min: 1 });
  }

  /** The last signal received, or `undefined` before the first. */
  get latest(): ResourceLeaseBackpressureSignal | undefined {
    return this.latestSignal;
  }

  /** The last `historyCapacity` signals, oldest first (a copy). */
  history(): ResourceLeaseBackpressureSignal[] {
    return [...this.recent];
  }

  /** Records the signal and hands it to every subscriber. */
  onBackpressureChanged(signal: ResourceLeaseBackpressureSignal): void {
    this.latestSignal = signal;
    if (this.recent.length >= this.historyCapacity) this.recent.shift();
    this.recent.push(signal);
    for (const subscriber of this.subscribers) subscriber.push(signal);
  }

  /**
   * Streams the signals received from now on. Each call is an independent subscriber with its own buffer of
   * `historyCapacity` signals; when a slow reader lets it fill, the oldest is dropped. Iteration ends when `signal`
   * aborts, when the loop breaks, or after {@link close} (once the buffered signals are read).
   */
  updates(options: BackpressureUpdatesOptions = {}): AsyncIterableIterator<ResourceLeaseBackpressureSignal> {
    const subscriber = new Subscriber(this.historyCapacity, options.signal, (s) => this.subscribers.delete(s));
    if (this.closed) subscriber.finish();
    else if (!options.signal?.aborted) this.subscribers.add(subscriber);
    return subscriber;
  }

  /** Ends every subscriber's iteration (after its buffered signals); later `updates()` calls end at once. */
  close(): void {
    this.closed = true;
    for (const subscriber of [...this.subscribers]) subscriber.finish();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
