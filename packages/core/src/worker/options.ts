import type { Logger } from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";
import type { SessionChannel, SessionChannelOptions } from "../resourcelease/session-channel.js";
import { type Clock, systemClock } from "../util/clock.js";
import { integerOption, numberOption } from "../wire/options.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";

/** Per-call options the worker passes to its client. */
export interface ResourceLeaseWorkerCallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/**
 * What a worker needs from a client: the lease verbs of `ResourceLeaseClient`. Any object with these methods works
 * (a client over another transport, a test double, a wrapper that adds metrics).
 */
export interface ResourceLeaseWorkerClient {
  lease(
    request: { peerId?: string; waitMs?: number; maxItems?: number },
    options?: ResourceLeaseWorkerCallOptions,
  ): Promise<ResourceLeaseGrant[]>;
  /** `remainingMs`, when given, is preferred to `leaseExpiresAt` because it does not depend on clock skew. */
  heartbeat(
    token: ResourceLeaseOwnershipToken,
    options?: ResourceLeaseWorkerCallOptions,
  ): Promise<{ leaseExpiresAt: number; remainingMs?: number }>;
  complete(token: ResourceLeaseOwnershipToken, options?: ResourceLeaseWorkerCallOptions): Promise<void>;
  completeMany(
    tokens: readonly ResourceLeaseOwnershipToken[],
    options?: ResourceLeaseWorkerCallOptions,
  ): Promise<Array<{ success: boolean; code?: string; message?: string }>>;
  fail(
    token: ResourceLeaseOwnershipToken,
    request?: { reason?: string; errorCode?: string; requeue?: boolean; delayMs?: number },
    options?: ResourceLeaseWorkerCallOptions,
  ): Promise<ResourceLeaseFailOutcome>;
  /**
   * Opens a worker session (one stream per worker and shard; docs/protocol.md), or returns undefined when the
   * transport cannot carry one. `ResourceLeaseClient` has it over an outbound that can (`HttpOutbound`, `GrpcOutbound`).
   */
  openSession?(options: Omit<SessionChannelOptions, "namespace">): SessionChannel | undefined;
}

/** What a handler gets besides its item. */
export interface ResourceLeaseWorkerContext {
  /**
   * Aborts when the worker no longer owns the lease (reason: an `OmniRelayError` with code
   * `resourcelease.lease.fenced` or `resourcelease.lease.expired_locally`) or when `close()` gave up waiting
   * (`resourcelease.worker.shutting_down`). Stop side effects when it fires: another worker may hold the item.
   */
  readonly signal: AbortSignal;
  /** Delivery attempt of the item, 1 for the first. */
  readonly attempt: number;
  /** The worker's current estimate of the lease deadline (ms since the epoch); renewals move it. */
  readonly leaseExpiresAt: number;
  /**
   * Renews the lease now (joins a renewal already in flight). Automatic renewals continue regardless.
   * @throws OmniRelayError failed-precondition `resourcelease.lease.fenced` when the lease is lost, the transport's
   * error for a transient failure, failed-precondition `resourcelease.worker.lease_settled` after the handler settled.
   */
  heartbeat(): Promise<void>;
}

/** Processes one leased item. Resolve to complete it; throw to fail it (see `failOnError`). */
export type ResourceLeaseWorkerHandler = (
  item: ResourceLeaseGrant,
  context: ResourceLeaseWorkerContext,
) => Promise<void> | void;

/** How a handler's error is reported to the queue. */
export interface ResourceLeaseWorkerFailDecision {
  /** Offer the item again (until the queue's `maxAttempts`); false dead-letters it. @defaultValue true */
  readonly requeue?: boolean;
  /** Delay before the item is offered again. @defaultValue the queue's retry backoff */
  readonly delayMs?: number;
  /** Stored as the item's `lastError.message`. @defaultValue the error's message */
  readonly reason?: string;
  /** Stored as the item's `lastError.code`. @defaultValue the error's `code` when it is an `OmniRelayError` */
  readonly errorCode?: string;
}

/** Backoff of failing lease calls: full-jitter exponential, `initialDelayMs * 2^(n-1)` capped at `maxDelayMs`. */
export interface ResourceLeaseWorkerRetryOptions {
  /** @defaultValue 100 */
  readonly initialDelayMs?: number;
  /** @defaultValue 5000 */
  readonly maxDelayMs?: number;
}

/** Options of a {@link ResourceLeaseWorker}. */
export interface ResourceLeaseWorkerOptions {
  /** The client leases are taken through, usually a `ResourceLeaseClient`. */
  readonly client: ResourceLeaseWorkerClient;
  /** Processes one item; see {@link ResourceLeaseWorkerHandler}. */
  readonly handler: ResourceLeaseWorkerHandler;
  /** The worker's stable identity, the same id peer choosers and health tracking use. */
  readonly peerId: string;
  /** Handlers run at once; a lease call asks for as many items as there are free slots. @defaultValue 1 */
  readonly concurrency?: number;
  /**
   * Items leased ahead of free handler slots and held in the worker, so a slot that frees up starts the next item at
   * once instead of waiting one lease round trip (graphile-worker's `localQueue`, BullMQ's fetch-next). A held item's
   * lease is renewed like a running one; if it is lost while held, its handler never runs; on close, held items go
   * back to the queue at once. The cost: held items are invisible to other workers. The worker refills in batches:
   * one lease call for the slots freed in one turn of the event loop, none while more than half the prefetch is still
   * held. On a session, concurrency + prefetch is all the credit the worker gives, so with short handlers the grants,
   * the dispatcher's commits and the completions take turns: for throughput, a prefetch several times the concurrency
   * lets them overlap (the benchmark's lifecycle rows use 500; at concurrency 10, 100 → 500 was ~15–30 % more items
   * per second); where a new item should not wait behind many leased ahead (latency, fair sharing), keep it small.
   * @defaultValue 0
   */
  readonly prefetch?: number;
  /**
   * Long-poll wait of each lease call. When a call comes back empty well before this (or the value is 0), the worker
   * pauses briefly (up to 1 s) before polling again. @defaultValue 5000
   */
  readonly leaseWaitMs?: number;
  /**
   * Renew a lease when this fraction of it has elapsed; 1 or more disables automatic renewal (the handler may still
   * call `context.heartbeat()`). @defaultValue 1/3
   */
  readonly heartbeatFraction?: number;
  /**
   * Abort the handler this long before the lease deadline when no renewal succeeded; clamped to a quarter of the lease
   * length so short leases keep room to work. @defaultValue 1000
   */
  readonly safetyMarginMs?: number;
  /**
   * Completions that arrive within this window go out as one `completeMany` (of up to 1,000); 0 batches those of the
   * same tick. @defaultValue 0
   */
  readonly completeBatchMs?: number;
  /** Maps a handler's error to the `fail` call. @defaultValue requeue with the error's message (and code) */
  readonly failOnError?: (error: unknown, item: ResourceLeaseGrant) => ResourceLeaseWorkerFailDecision;
  /** Backoff of failing lease calls. */
  readonly leaseRetry?: ResourceLeaseWorkerRetryOptions;
  /** Called for every `error` event (failed lease calls, failed renewals, undeliverable completions). */
  readonly onError?: (event: Extract<ResourceLeaseWorkerEvent, { type: "error" }>) => void;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
  /** Time source of every timer of the worker. @defaultValue systemClock */
  readonly clock?: Clock;
  /** Random source of the backoff jitter, in [0, 1). @defaultValue Math.random */
  readonly random?: () => number;
  /**
   * Lease, renew and settle over one long-lived session stream when the client can open one (`openSession`): the
   * worker grants credit for its free slots and the dispatcher pushes items as they arrive. `false` forces the unary
   * verbs. A dispatcher that serves no sessions, or a client with several `endpoints`, falls back to unary.
   * @defaultValue true
   */
  readonly session?: boolean;
  /**
   * A session the dispatcher has neither accepted nor refused within this long (a server that takes the connection and
   * never answers the upgrade, or never sends the gRPC call's initial metadata) is closed and counts as a failed
   * session: reported as an `error` event (deadline-exceeded `omnirelay.deadline_exceeded`) and opened again with
   * the lease backoff. (An HTTP session also gives up on its own after 30 s.) @defaultValue 10000
   */
  readonly sessionOpenTimeoutMs?: number;
}

/** Counters of a worker since it was built. Every leased item ends up completed, failed or fenced. */
export interface ResourceLeaseWorkerStats {
  /** Handlers running now. */
  readonly inFlight: number;
  /** Grants received. */
  readonly leased: number;
  /** Completions the server acknowledged. */
  readonly completed: number;
  /** Fails the server acknowledged (handler errors and handlers abandoned at close). */
  readonly failed: number;
  /** Leases lost: fenced by the server, expired locally, or whose completion could not be delivered in time. */
  readonly fenced: number;
  /** `error` events: failed calls, retried or given up. */
  readonly errors: number;
}

/** Options of {@link ResourceLeaseWorker.close}. */
export interface ResourceLeaseWorkerCloseOptions {
  /** How long running handlers may take to finish before they are aborted and failed with requeue. @defaultValue 10000 */
  readonly graceMs?: number;
}

/** Validated options with defaults applied. Internal. */
export interface ResolvedWorkerOptions {
  readonly client: ResourceLeaseWorkerClient;
  readonly handler: ResourceLeaseWorkerHandler;
  readonly peerId: string;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly leaseWaitMs: number;
  readonly heartbeatFraction: number;
  readonly safetyMarginMs: number;
  readonly completeBatchMs: number;
  readonly failOnError: (error: unknown, item: ResourceLeaseGrant) => ResourceLeaseWorkerFailDecision;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly onError: ((event: Extract<ResourceLeaseWorkerEvent, { type: "error" }>) => void) | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly session: boolean;
  readonly sessionOpenTimeoutMs: number;
}

const clientMethods = ["lease", "heartbeat", "complete", "completeMany", "fail"] as const;

function duration(value: number | undefined, option: string, fallback: number): number {
  return numberOption(option, value, { min: 0, fallback });
}

/** The default `failOnError`: requeue, with the error's message and code. Internal. */
export function defaultFailDecision(error: unknown): ResourceLeaseWorkerFailDecision {
  const message = error instanceof Error ? error.message : String(error);
  const code =
    typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string"
      ? (error as { code: string }).code
      : undefined;
  return { requeue: true, reason: message || "Handler failed.", ...(code ? { errorCode: code } : {}) };
}

/**
 * Validates worker options and applies defaults. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
 */
export function resolveWorkerOptions(options: ResourceLeaseWorkerOptions): ResolvedWorkerOptions {
  if (typeof options !== "object" || options === null)
    throw OmniRelayError.invalidOption("options", "Worker options are required.");
  const client = options.client as unknown as Record<string, unknown> | undefined;
  if (typeof client !== "object" || client === null || clientMethods.some((m) => typeof client[m] !== "function")) {
    throw OmniRelayError.invalidOption("client", `client must have the methods ${clientMethods.join(", ")}.`);
  }
  if (typeof options.handler !== "function")
    throw OmniRelayError.invalidOption("handler", "handler must be a function.");
  if (typeof options.peerId !== "string" || options.peerId.trim() === "") {
    throw OmniRelayError.invalidOption("peerId", "peerId must be a non-blank string.");
  }
  const concurrency = integerOption("concurrency", options.concurrency, { min: 1, fallback: 1 });
  const prefetch = integerOption("prefetch", options.prefetch, { min: 0, max: 10_000, fallback: 0 });
  const heartbeatFraction = numberOption("heartbeatFraction", options.heartbeatFraction, {
    min: 0,
    aboveMin: true,
    fallback: 1 / 3,
  });
  for (const name of ["failOnError", "onError", "random"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw OmniRelayError.invalidOption(name, `${name} must be a function.`);
    }
  }
  const retryInitialDelayMs = duration(options.leaseRetry?.initialDelayMs, "leaseRetry.initialDelayMs", 100);
  const retryMaxDelayMs = duration(options.leaseRetry?.maxDelayMs, "leaseRetry.maxDelayMs", 5_000);
  if (retryMaxDelayMs < retryInitialDelayMs) {
    throw OmniRelayError.invalidOption(
      "leaseRetry.maxDelayMs",
      "leaseRetry.maxDelayMs must be >= leaseRetry.initialDelayMs.",
    );
  }
  return {
    client: options.client,
    handler: options.handler,
    peerId: options.peerId,
    concurrency,
    prefetch,
    leaseWaitMs: Math.floor(duration(options.leaseWaitMs, "leaseWaitMs", 5_000)),
    heartbeatFraction,
    safetyMarginMs: duration(options.safetyMarginMs, "safetyMarginMs", 1_000),
    completeBatchMs: duration(options.completeBatchMs, "completeBatchMs", 0),
    failOnError: options.failOnError ?? defaultFailDecision,
    retryInitialDelayMs,
    retryMaxDelayMs,
    onError: options.onError,
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    session: options.session !== false && typeof options.client.openSession === "function",
    sessionOpenTimeoutMs: numberOption("sessionOpenTimeoutMs", options.sessionOpenTimeoutMs, {
      min: 1,
      fallback: 10_000,
    }),
  };
}
