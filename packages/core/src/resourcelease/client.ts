import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import type { ProcedureDefinition, UnaryOutbound, UnaryRequest } from "../dispatcher/types.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { SCHEDULE_MAX_COUNT } from "../queue/schedules.js";
import type { ResourceLeaseScheduleInput } from "../queue/schedules-api.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import { type Clock, systemClock } from "../util/clock.js";
import { neverAborts } from "../util/signals.js";
import type { HistoryRequest, HistoryResponse } from "../wire/history.js";
import { integerOption } from "../wire/options.js";
import type { ResourceLeaseScheduleInfo } from "../wire/schedule.js";
import {
  checkIdCount,
  checkResultCount,
  checkSchedulePage,
  DRAIN_MAX_ITEMS,
  hasRequestId,
  invalidAnswer,
  pastDeadline,
  scheduled,
} from "./client-checks.js";
import type { ResourceLeaseEndpoint, ResourceLeaseEndpointChange, ResourceLeaseFailoverOptions } from "./endpoints.js";
import { EnqueueCoalescer } from "./enqueue-coalescer.js";
import type { FailRequest } from "./messages.js";
import { ResourceLeaseProcedures as P, type ResourceLeaseVerb } from "./procedures.js";
import { EndpointRouter } from "./router.js";
import type { CancelRequest, CancelResponse, ScheduleSetRequest } from "./schedule-messages.js";
import { isSessionOutbound, type SessionChannel, type SessionChannelOptions } from "./session-channel.js";

/** Options of a {@link ResourceLeaseClient}. */
export interface ResourceLeaseClientOptions {
  /**
   * How calls travel to the one dispatcher that serves the namespace: `HttpOutbound` from core, or `GrpcOutbound`
   * from @omnirelay/transport-grpc. Give this or `endpoints`, not both. Every answer, `resourcelease.not_owner`
   * included, comes back as it is.
   */
  readonly outbound?: UnaryOutbound;
  /**
   * Several dispatcher nodes, any of which may own the namespace's shard (docs/queue-semantics.md, "Following the
   * shard's owner"). Calls go to the first until an answer moves them: `resourcelease.not_owner` naming a listed
   * owner sends them there (one not listed only when `followOwner` accepts it; otherwise the call throws that
   * answer); one naming nobody, a node that cannot be
   * reached or that does not serve the namespace sends them to the next endpoint, pausing between rounds (see
   * `failover`) until the call's deadline. A call is sent again only when the refusal proves nothing was applied
   * (`not_owner`, a closed queue, a refused connection) or the call is idempotent (`enqueue` with every item's
   * `requestId`, `heartbeat`, `stats`, `deadLetters`); otherwise its error is thrown and the next call goes to the
   * next endpoint. A string is a URL dialled with `connect`. Give this or `outbound`, not both.
   */
  readonly endpoints?: readonly (string | ResourceLeaseEndpoint)[];
  /**
   * Dials an endpoint by URL: the `endpoints` given as strings, and owners `followOwner` accepts. For gRPC pass
   * e.g. `(url) => new GrpcOutbound({ address: new URL(url).host })` (core does not depend on
   * @omnirelay/transport-grpc). A URL it throws for is skipped. @defaultValue `new HttpOutbound({ url, clock })`
   */
  readonly connect?: (url: string) => UnaryOutbound;
  /**
   * Whether the client may follow a `resourcelease.not_owner` answer to an `ownerUrl` that is not one of `endpoints`:
   * dial it with `connect` and send it this client's calls — their `headers` (a bearer token) and bodies (tokens,
   * payloads) included. Only with `endpoints`. By default none is followed: such an answer is thrown to the caller, so
   * a node (or anything answering for it) cannot send the client to a host it was not given.
   * @defaultValue `() => false`
   */
  readonly followOwner?: (url: string) => boolean;
  /** Pauses between rounds over every endpoint while no node serves the shard. Only with `endpoints`. */
  readonly failover?: ResourceLeaseFailoverOptions;
  /** Called when later calls move to another endpoint, and why. Only with `endpoints`. */
  readonly onEndpointChange?: (change: ResourceLeaseEndpointChange) => void;
  /** @defaultValue 'resourcelease' */
  readonly namespace?: string;
  /** Sent as `Rpc-Caller`; also the default peer id of leases. */
  readonly caller?: string;
  /** Service name put on request metadata. @defaultValue 'omnirelay' */
  readonly service?: string;
  /** Deadline of each call when the call gives none. @defaultValue 30000 */
  readonly timeoutMs?: number;
  /**
   * Time source of call deadlines (`timeoutMs` from now). Give the outbound the same clock (`HttpOutbound`'s `clock`);
   * `GrpcOutbound` reckons on the wall clock, as grpc-js does. @defaultValue `systemClock`
   */
  readonly clock?: Clock;
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

/**
 * Options of {@link ResourceLeaseClient.enqueue} and {@link ResourceLeaseClient.enqueueMany}: call options plus the
 * scheduling fields, applied to every item that does not set its own (see `ResourceLeaseItemPayload`).
 */
export interface ResourceLeaseClientEnqueueOptions extends ResourceLeaseClientCallOptions {
  /** Earliest lease time: ms since the epoch or a Date. Not with `delayMs`. */
  readonly notBefore?: number | Date;
  /** Delay from the server's clock at enqueue, ms. Not with `notBefore`. */
  readonly delayMs?: number;
  /** Priority (int32): higher first, FIFO within a priority. */
  readonly priority?: number;
}

/** Per-call settings the verbs give {@link ResourceLeaseClient}'s transport step. */
interface CallSettings extends ResourceLeaseClientCallOptions {
  /** The call may be sent again after an attempt whose outcome is unknown (an idempotent verb). */
  readonly replayable?: boolean;
  /** The deadline itself (the clock's ms) instead of `timeoutMs` from now: one deadline shared by several calls. */
  readonly deadline?: number;
}

/** Result of a single enqueue. */
export interface ClientEnqueueResult {
  readonly sequenceId: number;
  readonly duplicate: boolean;
  readonly stats: { pendingCount: number; activeLeaseCount: number };
}

/**
 * The typed client of the `resourcelease::*` procedures, over any transport. Errors are `OmniRelayError`s with the
 * server's status and `code` (e.g. `resourcelease.lease.fenced`). Given several `endpoints`, it follows the shard's
 * owner across dispatcher nodes (see {@link ResourceLeaseClientOptions.endpoints}).
 */
export class ResourceLeaseClient {
  readonly namespace: string;
  private readonly options: ResourceLeaseClientOptions;
  private readonly router: EndpointRouter | undefined;

  private readonly coalescer: EnqueueCoalescer | undefined;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a bad `coalesceEnqueues`, `endpoints`
   * or `failover`, or when neither or both of `outbound` and `endpoints` are given; whatever `connect` throws for a
   * listed URL (`HttpOutbound`: invalid-argument for a URL that is not http or https).
   */
  constructor(options: ResourceLeaseClientOptions) {
    this.options = options;
    this.namespace = options.namespace?.trim() || "resourcelease";
    if ((options.outbound === undefined) === (options.endpoints === undefined)) {
      throw OmniRelayError.invalidOption("outbound", "Give either outbound or endpoints.");
    }
    const clock = options.clock ?? systemClock;
    this.router =
      options.endpoints === undefined
        ? undefined
        : new EndpointRouter({
            endpoints: options.endpoints,
            connect: options.connect ?? ((url) => new HttpOutbound({ url, clock })),
            ...(options.followOwner ? { followOwner: options.followOwner } : {}),
            clock,
            ...(options.failover ? { failover: options.failover } : {}),
            ...(options.onEndpointChange ? { onChange: options.onEndpointChange } : {}),
          });
    const coalesce = integerOption("coalesceEnqueues", options.coalesceEnqueues, { min: 0, max: 1000, fallback: 0 });
    this.coalescer =
      coalesce > 1
        ? new EnqueueCoalescer(
            {
              many: (payloads) =>
                this.call(
                  P.enqueue,
                  { payloads: payloads as ResourceLeaseItemPayload[], batch: true },
                  { replayable: (payloads as ResourceLeaseItemPayload[]).every(hasRequestId) },
                ),
              one: (payload) => this.enqueueOne(payload as ResourceLeaseItemPayload),
            },
            coalesce,
          )
        : undefined;
  }

  /** The endpoint calls go to now (with `endpoints`); undefined with a single `outbound`. */
  get endpoint(): string | undefined {
    return this.router?.url;
  }

  /** Every endpoint known (with `endpoints`): the listed ones, then owners followed (`followOwner`). */
  get endpoints(): string[] {
    return this.router?.urls ?? [];
  }

  /** Enqueues one item (coalesced with others of the same turn when `coalesceEnqueues` is set). */
  async enqueue(
    given: ResourceLeaseItemPayload,
    options?: ResourceLeaseClientEnqueueOptions,
  ): Promise<ClientEnqueueResult> {
    const payload = scheduled(given, options);
    if (this.coalescer && options?.signal === undefined && !options?.timeoutMs && !options?.shardKey) {
      return this.coalescer.enqueue(payload);
    }
    return this.enqueueOne(payload, options);
  }

  private async enqueueOne(
    payload: ResourceLeaseItemPayload,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ClientEnqueueResult> {
    const r = await this.call(
      P.enqueue,
      { payloads: [payload], batch: false },
      { ...options, replayable: hasRequestId(payload) },
    );
    checkIdCount(r.sequenceIds, 1);
    const sequenceId = r.sequenceIds[0] as number;
    return { sequenceId, duplicate: r.duplicates[0] === true, stats: r.stats };
  }

  /** Enqueues items, all or none. */
  async enqueueMany(
    given: readonly ResourceLeaseItemPayload[],
    options?: ResourceLeaseClientEnqueueOptions,
  ): Promise<{ sequenceIds: number[]; duplicates: boolean[] }> {
    const payloads = given.map((p) => scheduled(p, options));
    const r = await this.call(
      P.enqueue,
      { payloads, batch: true },
      { ...options, replayable: payloads.every(hasRequestId) },
    );
    checkIdCount(r.sequenceIds, payloads.length);
    return { sequenceIds: [...r.sequenceIds], duplicates: [...r.duplicates] };
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
    const r = await this.call(P.lease, { ...(peerId ? { peerId } : {}), waitMs, maxItems }, { ...options, timeoutMs });
    return [...r.grants];
  }

  /** Extends a lease. */
  async heartbeat(
    token: ResourceLeaseOwnershipToken,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ leaseExpiresAt: number; remainingMs: number }> {
    return this.call(P.heartbeat, { ownershipToken: token }, { ...options, replayable: true });
  }

  /**
   * Completes a lease. A refusal is the server's error; an answer that does not say `success: true` is internal
   * `omnirelay.response.invalid` (the lease may not be completed).
   */
  async complete(token: ResourceLeaseOwnershipToken, options?: ResourceLeaseClientCallOptions): Promise<void> {
    const r = await this.call(P.complete, { ownershipTokens: [token], batch: false }, options);
    if (r.results.length !== 1 || r.results[0]?.success !== true) {
      throw invalidAnswer("success", "complete did not answer success: true.");
    }
  }

  /** Completes several leases; each result says whether its token succeeded. */
  async completeMany(
    tokens: readonly ResourceLeaseOwnershipToken[],
    options?: ResourceLeaseClientCallOptions,
  ): Promise<Array<{ success: boolean; code?: string; message?: string }>> {
    const r = await this.call(P.complete, { ownershipTokens: tokens, batch: true }, options);
    return [...checkResultCount(r.results, tokens.length)];
  }

  /** Fails a lease; see the queue's `fail` for the outcome rules. */
  async fail(
    token: ResourceLeaseOwnershipToken,
    request: Omit<FailRequest, "ownershipToken"> = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseFailOutcome> {
    return (await this.call(P.fail, { ownershipToken: token, ...request }, options)).outcome;
  }

  /**
   * Starts a drain and returns every queued item: it asks for pages until none remain (an item that comes back to
   * the queue meanwhile, from a failed lease, is taken too). `timeoutMs` (or the client's) and `signal` bound the
   * whole drain, every page. It stops at a page with no items, and after the page that brings it to `maxItems`
   * (default 1,000,000): whatever remains stays queued and the queue draining (`drain` again, or
   * {@link ResourceLeaseClient.drainPage} to hold one page at a time).
   */
  async drain(
    options?: ResourceLeaseClientCallOptions & { readonly maxItems?: number },
  ): Promise<ResourceLeasePendingItem[]> {
    const maxItems = integerOption("maxItems", options?.maxItems, { min: 1, fallback: DRAIN_MAX_ITEMS });
    const settings = this.shared(options);
    const items: ResourceLeasePendingItem[] = [];
    for (;;) {
      const page = await this.call(P.drain, {}, settings);
      items.push(...page.items);
      if (page.remainingCount === 0 || page.items.length === 0 || items.length >= maxItems) return items;
    }
  }

  /**
   * Starts a drain (or goes on with one) and takes one page of queued items: at most `maxItems` (1–1000). A server
   * from before paged drains answers everything at once, without a count (read as 0).
   */
  async drainPage(
    request: { maxItems?: number } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ items: ResourceLeasePendingItem[]; remainingCount: number }> {
    const r = await this.call(P.drain, request, options);
    return { items: [...r.items], remainingCount: r.remainingCount };
  }

  /** Restores items (keeping their sequence ids) and ends a drain. */
  async restore(items: readonly ResourceLeasePendingItem[], options?: ResourceLeaseClientCallOptions): Promise<number> {
    return (await this.call(P.restore, { items }, options)).restoredCount;
  }

  /**
   * Restores items with fresh sequence ids from the target queue (moving items to another node) and ends a drain.
   * Resolves with the new id of each item, in order.
   */
  async restoreRenumbered(
    items: readonly ResourceLeasePendingItem[],
    options?: ResourceLeaseClientCallOptions,
  ): Promise<{ restoredCount: number; sequenceIds: number[] }> {
    const r = await this.call(P.restore, { items, renumber: true }, options);
    return { restoredCount: r.restoredCount, sequenceIds: [...(r.sequenceIds ?? [])] };
  }

  /** Lists dead-lettered items. */
  async deadLetters(
    request: { limit?: number } = {},
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseDeadLetterItem[]> {
    return [...(await this.call(P.deadletters, request, { ...options, replayable: true })).items];
  }

  /** Moves dead-lettered items back to pending. */
  async redrive(request: { sequenceIds?: number[] } = {}, options?: ResourceLeaseClientCallOptions): Promise<number> {
    return (await this.call(P.redrive, request, options)).redrivenCount;
  }

  /** Queue counters. */
  async stats(options?: ResourceLeaseClientCallOptions): Promise<ResourceLeaseQueueStats> {
    return this.call(P.stats, {}, { ...options, replayable: true });
  }

  /**
   * Cancels a pending, delayed or leased item, named by exactly one of `sequenceId` and `requestId`; a leased item's
   * holder is refused with `resourcelease.lease.cancelled` from then on.
   */
  async cancel(target: CancelRequest, options?: ResourceLeaseClientCallOptions): Promise<CancelResponse> {
    return this.call(P.cancel, target, options);
  }

  /** Creates or replaces a cron schedule; answers it with its next slot. */
  async setSchedule(
    schedule: ResourceLeaseScheduleInput,
    options?: ResourceLeaseClientCallOptions,
  ): Promise<ResourceLeaseScheduleInfo> {
    const request = { schedule } as ScheduleSetRequest; // the server fills the defaults
    return (await this.call(P["schedule.set"], request, { ...options, replayable: true })).schedule;
  }

  /** Removes a cron schedule (`resourcelease.schedule.not_found` when there is none of that id). */
  async removeSchedule(id: string, options?: ResourceLeaseClientCallOptions): Promise<void> {
    await this.call(P["schedule.remove"], { id }, options);
  }

  /**
   * An item's lease history — enqueue, grants, heartbeats, expiries, lock-delay, refused stale calls, the end — named
   * by exactly one of `sequenceId` and `requestId` (`resourcelease.item.not_found` when the queue's bounded history
   * holds none).
   */
  async history(target: HistoryRequest, options?: ResourceLeaseClientCallOptions): Promise<HistoryResponse> {
    return this.call(P.history, target, { ...options, replayable: true });
  }

  /**
   * The queue's cron schedules, by id: every page of `schedule.list`, one call each. `timeoutMs` (or the client's) and
   * `signal` bound the whole listing, every page. Pages must move forward — ids in order, each past the `after` asked
   * for, `next` past it too — and hold no more than a queue can (10,000 schedules); otherwise the call rejects with
   * internal `omnirelay.response.invalid`.
   */
  async listSchedules(options?: ResourceLeaseClientCallOptions): Promise<ResourceLeaseScheduleInfo[]> {
    const settings = { ...this.shared(options), replayable: true };
    const all: ResourceLeaseScheduleInfo[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.call(P["schedule.list"], after === undefined ? {} : { after }, settings);
      checkSchedulePage(page, after);
      all.push(...page.schedules);
      if (all.length > SCHEDULE_MAX_COUNT) {
        throw invalidAnswer("schedules", `more than ${SCHEDULE_MAX_COUNT} schedules were listed.`);
      }
      if (page.next === undefined) return all;
      after = page.next;
    }
  }

  /**
   * Opens a worker session on this client's namespace (docs/protocol.md, "Worker sessions"), with its `caller` and
   * `headers`, when its `outbound` can carry one; undefined with `endpoints` (a session does not follow the shard's
   * owner: the worker then uses the unary verbs) or an outbound without sessions.
   */
  openSession(options: Omit<SessionChannelOptions, "namespace">): SessionChannel | undefined {
    const outbound = this.options.outbound;
    if (this.router || !isSessionOutbound(outbound)) return undefined;
    const caller = options.caller ?? this.options.caller;
    return outbound.openSession({
      ...options,
      namespace: this.namespace,
      headers: { ...this.options.headers, ...options.headers },
      ...(caller ? { caller } : {}),
    });
  }

  /** Sends any coalesced enqueues still waiting, then closes the outbound (every endpoint's, with `endpoints`). */
  async close(): Promise<void> {
    await this.coalescer?.settle();
    if (this.router) await this.router.close();
    else await this.options.outbound?.close?.();
  }

  /** Call settings of a verb that takes several calls: one deadline for all of them, from `timeoutMs` now. */
  private shared(options?: ResourceLeaseClientCallOptions): CallSettings {
    const timeoutMs = options?.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    return { ...options, deadline: (this.options.clock ?? systemClock).now() + timeoutMs };
  }

  private async call<Req, Res>(
    definition: ProcedureDefinition<Req, Res>,
    message: Req,
    options: CallSettings = {},
  ): Promise<Res> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    const clock = this.options.clock ?? systemClock;
    const deadline = options.deadline ?? clock.now() + timeoutMs;
    const signal = options.signal ?? neverAborts;
    // A deadline shared by several calls is enforced here too, whatever the outbound does with it.
    if (options.deadline !== undefined && !(deadline > clock.now())) throw pastDeadline();
    const request: UnaryRequest<Req> = {
      meta: {
        service: this.options.service ?? "omnirelay",
        procedure: `${this.namespace}::${definition.verb as ResourceLeaseVerb}`,
        transport: "http",
        encoding: "json",
        headers: { ...this.options.headers },
        signal,
        deadline,
        ...(this.options.caller ? { caller: this.options.caller } : {}),
        ...(options.shardKey ? { shardKey: options.shardKey } : {}),
      },
      message,
    };
    const response = this.router
      ? await this.router.call(definition, request, options.replayable === true)
      : await (this.options.outbound as UnaryOutbound).call(definition, request);
    return response.message;
  }
}
