import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { decodeJsonBody, encodeJsonBody } from "../dispatcher/json-codec.js";
import type { UnaryOutbound } from "../dispatcher/types.js";
import { ResourceLeaseErrorCodes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";
import {
  decodeErrorJson,
  decodePayloadJson,
  decodeTokenJson,
  encodePayloadJson,
  encodeTokenJson,
  JsonDecodeContext,
  requireTime,
} from "../replication/json-parts.js";
import { decodePendingItem, encodePendingItem } from "../replication/pending-item-json.js";
import type { ResourceLeaseVerb } from "./component.js";
import { EnqueueCoalescer } from "./enqueue-coalescer.js";

/** Options of a {@link ResourceLeaseClient}. */
export interface ResourceLeaseClientOptions {
  /** How calls travel: `HttpOutbound` from core, or `GrpcOutbound` from @omnirelay/transport-grpc. */
  readonly outbound: UnaryOutbound;
  /** @defaultValue 'resourcelease' */
  readonly namespace?: string;
  /** Sent as `Rpc-Caller`; also the default peer id of leases. */
  readonly caller?: string;
  /** Service name put on request metadata. @defaultValue 'omnirelay' */
  readonly service?: string;
  /** Deadline of each call when the call gives none. @defaultValue 30000 */
  readonly timeoutMs?: number;
  /** Headers sent with every call, e.g. `{ authorization: 'Bearer <jwt>' }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Coalesce `enqueue` calls made in the same event-loop turn into one batched RPC of up to this many items; each
   * call still resolves with its own result. A batch the server refuses as a whole for invalid-argument or
   * resource-exhausted is retried item by item, so each call gets the answer it would have had alone. Calls with
   * their own `signal`, `timeoutMs` or `shardKey` are always sent alone. 0: every `enqueue` is its own RPC. At most
   * 1000 (the server's default `maxBatchSize`).
   * @defaultValue 0
   */
  readonly coalesceEnqueues?: number;
}

/** Per-call options. */
export interface ResourceLeaseClientCallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Sent as `Rpc-Shard-Key`. */
  readonly shardKey?: string;
}

/** Result of a single enqueue. */
export interface ClientEnqueueResult {
  readonly sequenceId: number;
  readonly duplicate: boolean;
  readonly stats: { pendingCount: number; activeLeaseCount: number };
}

const ctx = new JsonDecodeContext("item");

/**
 * The typed client of the `resourcelease::*` procedures, over any transport. Errors are `OmniRelayError`s with the
 * server's status and `code` (e.g. `resourcelease.lease.fenced`).
 */
export class ResourceLeaseClient {
  readonly namespace: string;
  private readonly options: ResourceLeaseClientOptions;

  private readonly coalescer: EnqueueCoalescer | undefined;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a bad `coalesceEnqueues`. */
  constructor(options: ResourceLeaseClientOptions) {
    this.options = options;
    this.namespace = options.namespace?.trim() || "resourcelease";
    const coalesce = options.coalesceEnqueues ?? 0;
    if (!Number.isSafeInteger(coalesce) || coalesce < 0 || coalesce > 1000) {
      throw omniError(
        "invalid-argument",
        ResourceLeaseErrorCodes.optionsInvalid,
        "coalesceEnqueues must be an integer from 0 to 1000.",
        { option: "coalesceEnqueues" },
      );
    }
    this.coalescer =
      coalesce > 1
        ? new EnqueueCoalescer(
            {
              many: async (payloads) => {
                const r = await this.call("enqueue", { payloads });
                return {
                  sequenceIds: r.sequenceIds as number[],
                  duplicates: r.duplicates as boolean[],
                  stats: r.stats as ClientEnqueueResult["stats"],
                };
              },
              one: (payload) => this.enqueueEncoded(payload),
            },
            coalesce,
          )
        : undefined;
  }

  /** Enqueues one item (coalesced with others of the same turn when `coalesceEnqueues` is set). */
  async enqueue(
    payload: ResourceLeaseItemPayload,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ClientEnqueueResult> {
    if (this.coalescer && options?.signal === undefined && !options?.timeoutMs && !options?.shardKey) {
      return this.coalescer.enqueue(encodePayloadJson(payload));
    }
    return this.enqueueEncoded(encodePayloadJson(payload), options);
  }

  private async enqueueEncoded(
    payload: unknown,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ClientEnqueueResult> {
    const r = await this.call("enqueue", { payload }, options);
    return {
      sequenceId: r.sequenceId as number,
      duplicate: r.duplicate === true,
      stats: r.stats as ClientEnqueueResult["stats"],
    };
  }

  /** Enqueues items, all or none. */
  async enqueueMany(
    payloads: readonly ResourceLeaseItemPayload[],
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ sequenceIds: number[]; duplicates: boolean[] }> {
    const r = await this.call("enqueue", { payloads: payloads.map(encodePayloadJson) }, options);
    return { sequenceIds: r.sequenceIds as number[], duplicates: r.duplicates as boolean[] };
  }

  /** Leases up to `maxItems` (default 1) items, waiting up to `waitMs` when none is pending. */
  async lease(
    request: { peerId?: string; waitMs?: number; maxItems?: number } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseGrant[]> {
    const maxItems = request.maxItems ?? 1;
    const waitMs = request.waitMs ?? 0;
    const peerId = request.peerId ?? this.options.caller;
    const timeoutMs = Math.max(options?.timeoutMs ?? this.options.timeoutMs ?? 30_000, waitMs + 5_000);
    const r = await this.call("lease", { ...(peerId ? { peerId } : {}), waitMs, maxItems }, { ...options, timeoutMs });
    return ((r.items as unknown[]) ?? []).map((g, i) => decodeGrant(g, `items[${i}]`));
  }

  /** Extends a lease. */
  async heartbeat(
    token: ResourceLeaseOwnershipToken,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ leaseExpiresAt: number; remainingMs: number }> {
    const r = await this.call("heartbeat", { ownershipToken: encodeTokenJson(token) }, options);
    return {
      leaseExpiresAt: requireTime(ctx, r.leaseExpiresAt, "leaseExpiresAt"),
      remainingMs: r.remainingMs as number,
    };
  }

  /** Completes a lease. */
  async complete(token: ResourceLeaseOwnershipToken, options?: ResourceLeaseClientCallOptions): Promise<void> {
    await this.call("complete", { ownershipToken: encodeTokenJson(token) }, options);
  }

  /** Completes several leases; each result says whether its token succeeded. */
  async completeMany(
    tokens: readonly ResourceLeaseOwnershipToken[],
    options?: ResourceLeaseClientCallOptions,
  ): Promise<Array<{ success: boolean; code?: string; message?: string }>> {
    const r = await this.call("complete", { ownershipTokens: tokens.map(encodeTokenJson) }, options);
    return r.results as Array<{ success: boolean; code?: string; message?: string }>;
  }

  /** Fails a lease; see the queue's `fail` for the outcome rules. */
  async fail(
    token: ResourceLeaseOwnershipToken,
    request: {
      reason?: string;
      errorCode?: string;
      requeue?: boolean;
      delayMs?: number;
      metadata?: Record<string, string>;
    } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseFailOutcome> {
    const r = await this.call("fail", { ownershipToken: encodeTokenJson(token), ...request }, options);
    return r.outcome as ResourceLeaseFailOutcome;
  }

  /**
   * Starts a drain and returns every queued item: it asks for pages until none remain (an item that comes back to
   * the queue meanwhile, from a failed lease, is taken too). Use {@link ResourceLeaseClient.drainPage} to hold one
   * page at a time.
   */
  async drain(options?: ResourceLeaseClientCallOptions): Promise<ResourceLeasePendingItem[]> {
    const items: ResourceLeasePendingItem[] = [];
    for (;;) {
      const page = await this.drainPage({}, options);
      items.push(...page.items);
      if (page.remainingCount === 0 || page.items.length === 0) return items;
    }
  }

  /** Starts a drain (or goes on with one) and takes one page of queued items: at most `maxItems` (1–1000). */
  async drainPage(
    request: { maxItems?: number } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ items: ResourceLeasePendingItem[]; remainingCount: number }> {
    const r = await this.call("drain", request.maxItems === undefined ? {} : { maxItems: request.maxItems }, options);
    const items = (r.items as unknown[]).map((item, i) => decodePendingItem(item, { field: `items[${i}]` }));
    // A server from before paged drains answers everything at once, without a count.
    return { items, remainingCount: typeof r.remainingCount === "number" ? r.remainingCount : 0 };
  }

  /** Restores items (keeping their sequence ids) and ends a drain. */
  async restore(items: readonly ResourceLeasePendingItem[], options?: ResourceLeaseClientCallOptions): Promise<number> {
    const r = await this.call("restore", { items: items.map((i) => encodePendingItem(i)) }, options);
    return r.restoredCount as number;
  }

  /**
   * Restores items with fresh sequence ids from the target queue (moving items to another node) and ends a drain.
   * Resolves with the new id of each item, in order.
   */
  async restoreRenumbered(
    items: readonly ResourceLeasePendingItem[],
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ restoredCount: number; sequenceIds: number[] }> {
    const r = await this.call("restore", { items: items.map((i) => encodePendingItem(i)), renumber: true }, options);
    return { restoredCount: r.restoredCount as number, sequenceIds: (r.sequenceIds as number[]) ?? [] };
  }

  /** Lists dead-lettered items. */
  async deadLetters(
    request: { limit?: number } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseDeadLetterItem[]> {
    const r = await this.call("deadletters", request, options);
    return (r.items as Array<Record<string, unknown>>).map((item, i) => ({
      ...decodePendingItem(item, { field: `items[${i}]` }),
      deadLetteredAt: requireTime(ctx, item.deadLetteredAt, `items[${i}].deadLetteredAt`),
      reason: item.reason as ResourceLeaseDeadLetterItem["reason"],
    }));
  }

  /** Moves dead-lettered items back to pending. */
  async redrive(request: { sequenceIds?: number[] } = {}, options?: ResourceLeaseClientCallOptions): Promise<number> {
    const r = await this.call("redrive", request, options);
    return r.redrivenCount as number;
  }

  /** Queue counters. */
  async stats(options?: ResourceLeaseClientCallOptions): Promise<ResourceLeaseQueueStats> {
    return (await this.call("stats", {}, options)) as unknown as ResourceLeaseQueueStats;
  }

  /** Sends any coalesced enqueues still waiting, then closes the outbound. */
  async close(): Promise<void> {
    await this.coalescer?.settle();
    await this.options.outbound.close?.();
  }

  private async call(
    verb: ResourceLeaseVerb,
    body: unknown,
    options: ResourceLeaseClientCallOptions = {},
  ): Promise<Record<string, unknown>> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    const signal = options.signal ?? new AbortController().signal;
    const response = await this.options.outbound.call({
      meta: {
        service: this.options.service ?? "omnirelay",
        procedure: `${this.namespace}::${verb}`,
        transport: "http",
        encoding: "json",
        headers: { ...this.options.headers },
        signal,
        deadline: Date.now() + timeoutMs,
        ...(this.options.caller ? { caller: this.options.caller } : {}),
        ...(options.shardKey ? { shardKey: options.shardKey } : {}),
      },
      body: encodeJsonBody(body),
    });
    return decodeJsonBody(response.body);
  }
}

function decodeGrant(value: unknown, field: string): ResourceLeaseGrant {
  const g = value as Record<string, unknown>;
  const grant: {
    payload: ResourceLeaseItemPayload;
    sequenceId: number;
    attempt: number;
    enqueuedAt: number;
    lastError?: { message: string; code?: string };
    ownershipToken: ResourceLeaseOwnershipToken;
    ownerPeerId?: string;
    leaseExpiresAt: number;
  } = {
    payload: decodePayloadJson(ctx, g.payload, `${field}.payload`),
    sequenceId: g.sequenceId as number,
    attempt: g.attempt as number,
    enqueuedAt: requireTime(ctx, g.enqueuedAt, `${field}.enqueuedAt`),
    ownershipToken: decodeTokenJson(ctx, g.ownershipToken, `${field}.ownershipToken`),
    leaseExpiresAt: requireTime(ctx, g.leaseExpiresAt, `${field}.leaseExpiresAt`),
  };
  if (g.lastError) grant.lastError = decodeErrorJson(ctx, g.lastError, `${field}.lastError`);
  if (typeof g.ownerPeerId === "string") grant.ownerPeerId = g.ownerPeerId;
  return grant;
}
