import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import type { Logger, ResourceLeaseBackpressureListener } from "../contracts/health.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";
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
  if (!ok) throw omniError("invalid-argument", Codes.optionsInvalid, message, { option });
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
}

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
  };
  check(isInt(s.capacity, 1), "capacity", "capacity must be an integer >= 1.");
  check(isInt(s.leaseDurationMs, 1), "leaseDurationMs", "leaseDurationMs must be an integer >= 1.");
  check(isInt(s.maxAttempts, 1), "maxAttempts", "maxAttempts must be an integer >= 1.");
  check(isInt(s.initialDelayMs, 0), "retryBackoff.initialDelayMs", "retryBackoff.initialDelayMs must be >= 0.");
  check(Number.isFinite(s.multiplier) && s.multiplier >= 1, "retryBackoff.multiplier", "multiplier must be >= 1.");
  check(isInt(s.maxDelayMs, 0), "retryBackoff.maxDelayMs", "retryBackoff.maxDelayMs must be >= 0.");
  check(isInt(s.idempotencyWindowMs, 0), "idempotencyWindowMs", "idempotencyWindowMs must be >= 0.");
  check(isInt(s.maxBatchSize, 1), "maxBatchSize", "maxBatchSize must be an integer >= 1.");
  check(isInt(s.maxWaitMs, 0), "maxWaitMs", "maxWaitMs must be an integer >= 0.");
  return s;
}
