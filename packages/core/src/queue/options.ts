import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import type { Logger, ResourceLeaseBackpressureListener } from "../contracts/health.js";
import type { Clock } from "../util/clock.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { integerOption, numberOption } from "../wire/options.js";
import {
  type ResourceLeaseKeyOptions,
  type ResourceLeasePriorityAgingOptions,
  resolveDispatchRules,
} from "./dispatch-options.js";
import type { DispatchRules } from "./pending.js";

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

/**
 * Bounds of the per-item lease history (`history`): every item's story — enqueue, grants, heartbeats, expiries,
 * refused stale calls, the end — kept in memory from the events the queue applies (and replays from its log).
 */
export interface ResourceLeaseHistoryOptions {
  /** Most items whose stories are kept; the least recently touched leaves first. 0 turns history off. @defaultValue 1000 */
  readonly maxItems?: number;
  /** Most entries of one item's story (runs of heartbeats fold into one); the oldest after the first leave. @defaultValue 100 */
  readonly maxEntriesPerItem?: number;
}

/** Options of a {@link ResourceLeaseQueue}. */
export interface ResourceLeaseQueueOptions {
  /** Name used in logs. @defaultValue 'resourcelease' */
  readonly name?: string;
  /** Maximum number of queued (pending + delayed) items. @defaultValue 512 */
  readonly capacity?: number;
  /** Lease duration; a heartbeat extends the lease by this much from now. @defaultValue 30000 */
  readonly leaseDurationMs?: number;
  /**
   * Deliveries before an item is dead-lettered; a value above 2^31 - 1 (the highest attempt a token or a log carries)
   * is taken as 2^31 - 1. @defaultValue 5
   */
  readonly maxAttempts?: number;
  /** Backoff before a failed or expired item is offered again. */
  readonly retryBackoff?: ResourceLeaseRetryBackoffOptions;
  /** How long an enqueue `requestId` is remembered for de-duplication. @defaultValue 600000 (10 min) */
  readonly idempotencyWindowMs?: number;
  /**
   * Most `requestId`s remembered at once; past it the oldest is forgotten before its window ends, so the memory of ids
   * stays bounded at any enqueue rate (each costs ~100 B plus its length). @defaultValue 1000000
   */
  readonly idempotencyMaxEntries?: number;
  /** At most one active lease per `partitionKey`; items of a partition are leased in FIFO order. @defaultValue false */
  readonly orderedPartitions?: boolean;
  /** Per-key concurrency caps, rates and fair sharing (see docs/queue-semantics.md). Not with `orderedPartitions`. */
  readonly keys?: ResourceLeaseKeyOptions;
  /** Opt-in priority aging. @defaultValue off: strict priority order */
  readonly priorityAging?: ResourceLeasePriorityAgingOptions;
  /**
   * Lock-delay after an unclean expiry (Chubby's answer to "the old holder may still be running"): an item whose lease
   * expired without complete or fail waits at least `lockDelayMs` before it is granted again, and during that wait
   * the expired holder's token is still the item's newest, so its late `complete` is accepted (the work is not done
   * twice). Once the item is granted again the old token is fenced as always. The trade-off: an item whose worker
   * really died waits this much longer before another worker gets it. The wait is the larger of this and the retry
   * backoff. @defaultValue 0 (off: an expired item is leaseable again after its backoff)
   */
  readonly lockDelayMs?: number;
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
  /** Bounds of the per-item lease history. */
  readonly history?: ResourceLeaseHistoryOptions;
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

/** Resolved, validated queue settings. */
export interface ResolvedQueueSettings {
  name: string;
  capacity: number;
  leaseDurationMs: number;
  maxAttempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  lockDelayMs: number;
  idempotencyWindowMs: number;
  idempotencyMaxEntries: number;
  orderedPartitions: boolean;
  /** How the pending set picks the next item (keys, caps, rates, fairness, aging). */
  dispatch: DispatchRules;
  bindLeasesToPrincipal: boolean;
  maxBatchSize: number;
  maxWaitMs: number;
  maxBodyBytes: number;
  maxBytes: number;
  deadLetterMaxCount: number;
  deadLetterMaxBytes: number;
  deadLetterMaxAgeMs: number;
  historyMaxItems: number;
  historyMaxEntries: number;
}

const DAY_MS = 24 * 3_600_000;
const WEEK_MS = 7 * DAY_MS;
const MIB = 1024 * 1024;

/**
 * Validates queue options and fills defaults.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
 */
export function resolveQueueSettings(options: ResourceLeaseQueueOptions): ResolvedQueueSettings {
  const backoff = options.retryBackoff;
  const dead = options.deadLetters;
  // Durations end up as times in events (now + duration): bounded so those stay far inside what a log can write.
  const s: ResolvedQueueSettings = {
    name: options.name?.trim() || "resourcelease",
    capacity: integerOption("capacity", options.capacity, { min: 1, fallback: 512 }),
    leaseDurationMs: integerOption("leaseDurationMs", options.leaseDurationMs, {
      min: 1,
      max: WEEK_MS,
      fallback: 30_000,
    }),
    // Above the highest attempt a token, a restore or a log carries, an item could count past it and its drained page
    // would not restore: such a setting means "retry forever", which 2^31 - 1 deliveries is.
    maxAttempts: Math.min(
      integerOption("maxAttempts", options.maxAttempts, { min: 1, fallback: 5 }),
      Limits.maxAttempt,
    ),
    initialDelayMs: integerOption("retryBackoff.initialDelayMs", backoff?.initialDelayMs, {
      min: 0,
      max: WEEK_MS,
      fallback: 0,
    }),
    multiplier: numberOption("retryBackoff.multiplier", backoff?.multiplier, { min: 1, fallback: 2 }),
    maxDelayMs: integerOption("retryBackoff.maxDelayMs", backoff?.maxDelayMs, {
      min: 0,
      max: WEEK_MS,
      fallback: 60_000,
    }),
    lockDelayMs: integerOption("lockDelayMs", options.lockDelayMs, { min: 0, max: WEEK_MS, fallback: 0 }),
    idempotencyWindowMs: integerOption("idempotencyWindowMs", options.idempotencyWindowMs, {
      min: 0,
      max: 4 * WEEK_MS,
      fallback: 600_000,
    }),
    idempotencyMaxEntries: integerOption("idempotencyMaxEntries", options.idempotencyMaxEntries, {
      min: 1,
      max: 2 ** 31 - 1,
      fallback: 1_000_000,
    }),
    orderedPartitions: options.orderedPartitions ?? false,
    dispatch: resolveDispatchRules(options),
    bindLeasesToPrincipal: options.bindLeasesToPrincipal ?? false,
    maxBatchSize: integerOption("maxBatchSize", options.maxBatchSize, { min: 1, fallback: 1000 }),
    maxWaitMs: integerOption("maxWaitMs", options.maxWaitMs, { min: 0, fallback: 60_000 }),
    maxBodyBytes: integerOption("maxBodyBytes", options.maxBodyBytes, { min: 0, max: 64 * MIB, fallback: MIB }),
    maxBytes: integerOption("maxBytes", options.maxBytes, { min: 1, fallback: 512 * MIB }),
    deadLetterMaxCount: integerOption("deadLetters.maxCount", dead?.maxCount, { min: 0, fallback: 10_000 }),
    deadLetterMaxBytes: integerOption("deadLetters.maxBytes", dead?.maxBytes, { min: 0, fallback: 64 * MIB }),
    deadLetterMaxAgeMs: integerOption("deadLetters.maxAgeMs", dead?.maxAgeMs, {
      min: 0,
      max: 100 * 365 * DAY_MS,
      fallback: WEEK_MS,
    }),
    historyMaxItems: integerOption("history.maxItems", options.history?.maxItems, { min: 0, fallback: 1000 }),
    historyMaxEntries: integerOption("history.maxEntriesPerItem", options.history?.maxEntriesPerItem, {
      min: 2,
      max: 100_000,
      fallback: 100,
    }),
  };
  return s;
}
