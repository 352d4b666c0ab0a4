import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import type { Logger, ResourceLeaseBackpressureListener } from "../contracts/health.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Clock } from "../util/clock.js";

/** Retry backoff for failed and expired leases: `initialDelayMs * multiplier^(attempt-1)`, capped. */
export interface ResourceLeaseRetryBackoffOptions {
  /** Delay before the first retry. @defaultValue 0 (requeue at once) */
  readonly initialDelayMs?: number;
  /** @defaultValue 2 */
  readonly multiplier?: number;
  /** @defaultValue 60000 */
  readonly maxDelayMs?: number;
}

/** Backpressure of a queue: watermarks on the pending count. */
export interface ResourceLeaseQueueBackpressureOptions {
  /** Pending count at which backpressure turns on. */
  readonly highWatermark: number;
  /** Pending count at which it turns off again. @defaultValue floor(highWatermark / 2) */
  readonly lowWatermark?: number;
  /** Minimum time between two transitions. @defaultValue 5000 */
  readonly cooldownMs?: number;
  /**
   * What an enqueue does while backpressure is on: `'reject'` fails fast with `resource-exhausted`
   * (`resourcelease.backpressure`, metadata `retryAfterMs`); `'wait'` waits until it clears or the caller's
   * signal aborts. @defaultValue 'reject'
   */
  readonly mode?: "reject" | "wait";
  /** Notified on every transition. */
  readonly listeners?: readonly ResourceLeaseBackpressureListener[];
}

/**
 * Bounds of the dead-letter set. When a bound is passed, the oldest dead letters are purged, each with a
 * `DeadLetterPurged` event (metadata `deadletter.purge_reason`: `count`, `bytes` or `age`), so sinks see what left.
 */
export interface ResourceLeaseDeadLetterRetentionOptions {
  /** Most dead letters kept. @defaultValue 10000 */
  readonly maxCount?: number;
  /** Most payload bytes (see `ResourceLeaseLimits`) kept in dead letters. @defaultValue 67108864 (64 MiB) */
  readonly maxBytes?: number;
  /** How long a dead letter is kept; 0 keeps them until a count or byte bound pushes them out. @defaultValue 604800000 (7 days) */
  readonly maxAgeMs?: number;
}

/** Options of a {@link ResourceLeaseQueue}. */
export interface ResourceLeaseQueueOptions {
  /** Name used in logs. @defaultValue 'resourcelease' */
  readonly name?: string;
  /** Maximum number of queued (pending + delayed) items. @defaultValue 512 */
  readonly capacity?: number;
  /** Lease duration; a heartbeat extends the lease by this much from now. @defaultValue 30000 */
  readonly leaseDurationMs?: number;
  /** Deliveries before an item is dead-lettered. @defaultValue 5 */
  readonly maxAttempts?: number;
  /** Backoff before a failed or expired item is offered again. */
  readonly retryBackoff?: ResourceLeaseRetryBackoffOptions;
  /** How long an enqueue `requestId` is remembered for de-duplication. @defaultValue 600000 (10 min) */
  readonly idempotencyWindowMs?: number;
  /** At most one active lease per `partitionKey`; items of a partition are leased in FIFO order. @defaultValue false */
  readonly orderedPartitions?: boolean;
  /** Only the principal that took a lease may heartbeat, complete or fail it. @defaultValue false */
  readonly bindLeasesToPrincipal?: boolean;
  /** Largest `maxItems`, batch enqueue and batch complete size. @defaultValue 1000 */
  readonly maxBatchSize?: number;
  /** Largest `waitMs` a lease call may ask for. @defaultValue 60000 */
  readonly maxWaitMs?: number;
  /** Largest payload body an item may carry, in bytes. @defaultValue 1048576 (1 MiB) */
  readonly maxBodyBytes?: number;
  /**
   * Byte budget of the items the queue holds (pending, delayed and leased; dead letters have their own bound):
   * an enqueue or restore that would pass it is refused with `resourcelease.queue.full` (metadata `limit: "bytes"`).
   * Counted as body bytes plus string characters. @defaultValue 536870912 (512 MiB)
   */
  readonly maxBytes?: number;
  /** Bounds of the dead-letter set. */
  readonly deadLetters?: ResourceLeaseDeadLetterRetentionOptions;
  /** Watermark backpressure; off when not given. */
  readonly backpressure?: ResourceLeaseQueueBackpressureOptions;
  /**
   * Receives every event in order. Each operation resolves only after the replicator resolved its events
   * (durable-before-ack with a durable replicator). If it rejects, the queue turns `faulted`.
   */
  readonly replicator?: ResourceLeaseReplicator;
  /** Synchronous observers of every event, e.g. `PeerLeaseHealthTracker.observe`. Exceptions are logged. */
  readonly observers?: ReadonlyArray<(event: ResourceLeaseReplicationEvent) => void>;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

function check(ok: boolean, option: string, message: string): void {
  if (!ok) throw OmniRelayError.invalidOption(option, message);
}

const isInt = (v: number, min: number) => Number.isSafeInteger(v) && v >= min;

/** Resolved, validated queue settings. */
export interface ResolvedQueueSettings {
  name: string;
  capacity: number;
  leaseDurationMs: number;
  maxAttempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  idempotencyWindowMs: number;
  orderedPartitions: boolean;
  bindLeasesToPrincipal: boolean;
  maxBatchSize: number;
  maxWaitMs: number;
  maxBodyBytes: number;
  maxBytes: number;
  deadLetterMaxCount: number;
  deadLetterMaxBytes: number;
  deadLetterMaxAgeMs: number;
}

const WEEK_MS = 7 * 24 * 3_600_000;

/**
 * Validates queue options and fills defaults.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
 */
export function resolveQueueSettings(options: ResourceLeaseQueueOptions): ResolvedQueueSettings {
  const s: ResolvedQueueSettings = {
    name: options.name?.trim() || "resourcelease",
    capacity: options.capacity ?? 512,
    leaseDurationMs: options.leaseDurationMs ?? 30_000,
    maxAttempts: options.maxAttempts ?? 5,
    initialDelayMs: options.retryBackoff?.initialDelayMs ?? 0,
    multiplier: options.retryBackoff?.multiplier ?? 2,
    maxDelayMs: options.retryBackoff?.maxDelayMs ?? 60_000,
    idempotencyWindowMs: options.idempotencyWindowMs ?? 600_000,
    orderedPartitions: options.orderedPartitions ?? false,
    bindLeasesToPrincipal: options.bindLeasesToPrincipal ?? false,
    maxBatchSize: options.maxBatchSize ?? 1000,
    maxWaitMs: options.maxWaitMs ?? 60_000,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    maxBytes: options.maxBytes ?? 512 * 1024 * 1024,
    deadLetterMaxCount: options.deadLetters?.maxCount ?? 10_000,
    deadLetterMaxBytes: options.deadLetters?.maxBytes ?? 64 * 1024 * 1024,
    deadLetterMaxAgeMs: options.deadLetters?.maxAgeMs ?? WEEK_MS,
  };
  const within = (v: number, min: number, max: number) => isInt(v, min) && v <= max;
  check(isInt(s.capacity, 1), "capacity", "capacity must be an integer >= 1.");
  // Durations end up as times in events (now + duration): bounded so those stay far inside what a log can write.
  check(
    within(s.leaseDurationMs, 1, WEEK_MS),
    "leaseDurationMs",
    "leaseDurationMs must be an integer in 1..604800000.",
  );
  check(isInt(s.maxAttempts, 1), "maxAttempts", "maxAttempts must be an integer >= 1.");
  check(
    within(s.initialDelayMs, 0, WEEK_MS),
    "retryBackoff.initialDelayMs",
    "retryBackoff.initialDelayMs must be an integer in 0..604800000.",
  );
  check(Number.isFinite(s.multiplier) && s.multiplier >= 1, "retryBackoff.multiplier", "multiplier must be >= 1.");
  check(
    within(s.maxDelayMs, 0, WEEK_MS),
    "retryBackoff.maxDelayMs",
    "retryBackoff.maxDelayMs must be an integer in 0..604800000.",
  );
  check(
    within(s.idempotencyWindowMs, 0, 4 * WEEK_MS),
    "idempotencyWindowMs",
    "idempotencyWindowMs must be an integer in 0..2419200000.",
  );
  check(isInt(s.maxBatchSize, 1), "maxBatchSize", "maxBatchSize must be an integer >= 1.");
  check(isInt(s.maxWaitMs, 0), "maxWaitMs", "maxWaitMs must be an integer >= 0.");
  check(within(s.maxBodyBytes, 0, 64 * 1024 * 1024), "maxBodyBytes", "maxBodyBytes must be an integer in 0..64 MiB.");
  check(isInt(s.maxBytes, 1), "maxBytes", "maxBytes must be an integer >= 1.");
  check(isInt(s.deadLetterMaxCount, 0), "deadLetters.maxCount", "deadLetters.maxCount must be an integer >= 0.");
  check(isInt(s.deadLetterMaxBytes, 0), "deadLetters.maxBytes", "deadLetters.maxBytes must be an integer >= 0.");
  check(
    within(s.deadLetterMaxAgeMs, 0, 100 * 365 * 24 * 3_600_000),
    "deadLetters.maxAgeMs",
    "deadLetters.maxAgeMs must be an integer in 0..100 years.",
  );
  return s;
}
