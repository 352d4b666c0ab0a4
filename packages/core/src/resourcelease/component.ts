import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryInboundMiddleware } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { PeerLeaseHealthTracker } from "../peers/index.js";
import { peerEjectedError } from "../peers/peer-ejection.js";
import type { QueueEngine } from "../queue/engine.js";
import type { ResourceLeaseQueueOptions } from "../queue/options.js";
import { queueEngine, ResourceLeaseQueue } from "../queue/queue.js";
import type { ResourceLeaseCallContext } from "../queue/types.js";
import type { HistoryRequest, HistoryResponse } from "../wire/history.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { requestSite } from "../wire/site.js";
import { text } from "../wire/values.js";
import type * as M from "./messages.js";
import { ResourceLeaseProcedures, type ResourceLeaseVerb, ResourceLeaseVerbs } from "./procedures.js";
import type * as S from "./schedule-messages.js";
import { registerSessionHost } from "./session-open.js";

export { type ResourceLeaseVerb, ResourceLeaseVerbs } from "./procedures.js";

/** Options of a {@link ResourceLeaseDispatcherComponent}. */
export interface ResourceLeaseDispatcherComponentOptions {
  /** Procedure prefix; several components with different namespaces are shards. @defaultValue 'resourcelease' */
  readonly namespace?: string;
  /** A queue to serve (e.g. one rebuilt from a durable log). When absent, one is built from `queueOptions`. */
  readonly queue?: ResourceLeaseQueue;
  /** Options of the queue built when `queue` is absent; its `clock` defaults to the dispatcher's. */
  readonly queueOptions?: ResourceLeaseQueueOptions;
  /**
   * Peer health: every lease call (even an empty one) counts as liveness of its peer. When the component builds the
   * queue, the tracker also observes its events; with your own `queue`, add `tracker.observe` to its observers.
   */
  readonly healthTracker?: PeerLeaseHealthTracker;
  /** Middleware for this component's procedures only. */
  readonly middleware?: readonly UnaryInboundMiddleware[];
  readonly logger?: Logger;
}

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * One answer of `drain` or `deadletters` holds at most this many payload bytes (at least one item), so it stays
 * within what a `restore` request may carry (4 MiB by default, bodies base64-encoded).
 */
const PAGE_MAX_BYTES = 2 * 1024 * 1024;
/** Default and largest `maxItems` of one `drain` answer. */
const DRAIN_PAGE_ITEMS = 1000;
/** Default `limit` of one `schedule.list` answer. */
const SCHEDULE_PAGE_ITEMS = 1000;
/** A long poll answers this long before its caller's deadline, so the (empty) answer arrives in time. */
const DEADLINE_MARGIN_MS = 25;

type Handlers = { [V in ResourceLeaseVerb]: (request: never, meta: RequestMeta) => Promise<unknown> };

/**
 * Serves a {@link ResourceLeaseQueue} as the `{namespace}::*` procedures of a dispatcher (wire format in
 * docs/protocol.md). Requests arrive decoded and checked by the transport (with the queue's `maxBodyBytes`); the
 * component hands them to the queue's checked operations. It adds itself to the dispatcher's components, so
 * `dispatcher.stop()` closes its queue once the calls are done.
 */
export class ResourceLeaseDispatcherComponent implements AsyncDisposable {
  readonly namespace: string;
  readonly queue: ResourceLeaseQueue;
  private readonly engine: QueueEngine;
  private readonly tracker: PeerLeaseHealthTracker | undefined;
  /** The dispatcher is stopping: lease calls wait for nothing. */
  private ending = false;
  private readonly logger: Logger;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a bad namespace, already-exists
   * `omnirelay.procedure.duplicate` when the namespace is already served by the dispatcher, failed-precondition
   * `omnirelay.lifecycle.state` when the dispatcher is stopping or stopped.
   */
  constructor(dispatcher: Dispatcher, options: ResourceLeaseDispatcherComponentOptions = {}) {
    const namespace = options.namespace?.trim() || "resourcelease";
    if (!NAMESPACE.test(namespace)) {
      throw OmniRelayError.invalidOption("namespace", `Invalid namespace '${namespace}'.`);
    }
    this.namespace = namespace;
    this.tracker = options.healthTracker;
    this.logger = options.logger ?? silentLogger;
    const tracker = options.healthTracker;
    this.queue =
      options.queue ??
      new ResourceLeaseQueue({
        ...options.queueOptions,
        // One clock for the call deadlines the dispatcher enforces and the queue's own timers (long-poll margins).
        clock: options.queueOptions?.clock ?? dispatcher.clock,
        name: options.queueOptions?.name ?? namespace,
        observers: [
          ...(options.queueOptions?.observers ?? []),
          ...(tracker ? [(e: ResourceLeaseReplicationEvent) => tracker.observe(e)] : []),
        ],
        ...(options.queueOptions?.logger ? {} : { logger: this.logger }),
      });
    this.engine = queueEngine(this.queue);
    const handlers: Handlers = {
      enqueue: (r: M.EnqueueRequest, m) => this.enqueue(r, m),
      lease: (r: M.LeaseRequest, m) => this.lease(r, m),
      heartbeat: (r: M.HeartbeatRequest, m) => this.engine.heartbeat(r.ownershipToken, this.context(m)),
      complete: (r: M.CompleteRequest, m) => this.complete(r, m),
      fail: async (r: M.FailRequest, m): Promise<M.FailResponse> => {
        const { ownershipToken, ...rest } = r;
        return { outcome: await this.engine.fail(ownershipToken, { ...this.context(m), ...rest }) };
      },
      drain: async (r: M.DrainRequest, m): Promise<M.DrainResponse> => {
        const maxItems = r.maxItems ?? DRAIN_PAGE_ITEMS;
        const items = await this.engine.drain({ maxItems, maxBytes: PAGE_MAX_BYTES }, this.context(m));
        return { items, remainingCount: this.engine.state.queuedCount };
      },
      restore: async (r: M.RestoreRequest, m): Promise<M.RestoreResponse> => {
        const done = await this.engine.restore(r.items, {
          ...this.context(m),
          ...(r.renumber ? { renumber: true } : {}),
        });
        return r.renumber ? done : { restoredCount: done.restoredCount };
      },
      deadletters: async (r: M.DeadLettersRequest): Promise<M.DeadLettersResponse> => {
        this.engine.ensureNotStopped();
        return { items: this.engine.deadLetters({ maxItems: r.limit ?? 100, maxBytes: PAGE_MAX_BYTES }) };
      },
      redrive: async (r: M.RedriveRequest, m): Promise<M.RedriveResponse> => ({
        redrivenCount: await this.engine.redrive(r.sequenceIds, this.context(m)),
      }),
      stats: async () => {
        this.engine.ensureNotStopped();
        return this.engine.stats();
      },
      cancel: async (r: S.CancelRequest, m): Promise<S.CancelResponse> => {
        if ((r.sequenceId === undefined) === (r.requestId === undefined)) throw oneTargetError("cancel");
        return this.engine.cancel(r, this.context(m));
      },
      history: async (r: HistoryRequest): Promise<HistoryResponse> => {
        this.engine.ensureNotStopped();
        if ((r.sequenceId === undefined) === (r.requestId === undefined)) throw oneTargetError("history");
        return this.engine.history(r);
      },
      "schedule.set": async (r: S.ScheduleSetRequest, m): Promise<S.ScheduleSetResponse> => ({
        schedule: await this.engine.setSchedule(r.schedule, this.context(m)),
      }),
      "schedule.remove": async (r: S.ScheduleRemoveRequest, m): Promise<S.ScheduleRemoveResponse> => {
        await this.engine.removeSchedule(r.id, this.context(m));
        return { removed: true };
      },
      "schedule.list": async (r: S.ScheduleListRequest): Promise<S.ScheduleListResponse> => {
        this.engine.ensureNotStopped(); // a node that lost the shard answers not_owner, not its stale schedules
        return this.engine.schedulePage({
          ...(r.after !== undefined ? { after: r.after } : {}),
          maxItems: r.limit ?? SCHEDULE_PAGE_ITEMS,
          maxBytes: PAGE_MAX_BYTES,
        });
      },
    };
    // Register all or nothing: a duplicate namespace must not leave half the verbs behind.
    for (const verb of ResourceLeaseVerbs) {
      if (dispatcher.lookup(`${namespace}::${verb}`)) {
        throw new OmniRelayError({
          status: "already-exists",
          code: ErrorCodes.rpc.procedureDuplicate,
          message: `Namespace '${namespace}' is already served.`,
          metadata: {
            procedure: `${namespace}::${verb}`,
          },
        });
      }
    }
    dispatcher.addComponent(this);
    // Worker sessions (docs/protocol.md) on any transport reach this queue through the dispatcher.
    registerSessionHost(dispatcher, namespace, {
      engine: this.engine,
      tracker: this.tracker,
      logger: this.logger,
      context: (meta) => this.context(meta),
    });
    const maxBodyBytes = this.engine.settings.maxBodyBytes;
    for (const verb of ResourceLeaseVerbs) {
      dispatcher.register({
        name: `${namespace}::${verb}`,
        definition: ResourceLeaseProcedures[verb] as never,
        handler: handlers[verb] as (request: unknown, meta: RequestMeta) => Promise<unknown>,
        maxBodyBytes,
        ...(options.middleware ? { middleware: options.middleware } : {}),
        labels: { kind: "resourcelease", namespace, verb },
      });
    }
  }

  /**
   * The dispatcher begins to stop: waiting long polls answer now, empty, and a lease call still arriving waits for
   * nothing, so the drain does not sit out its grace on them. Worker sessions end with their inbound.
   */
  stopping(): void {
    this.ending = true;
    this.engine.endWaits();
  }

  /** Closes the queue (`dispatcher.stop()` does this after the calls are done). Idempotent. */
  async close(): Promise<void> {
    await this.queue.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Who is calling: the request's peer id, else `Rpc-Caller`, else the principal (each at most 256 characters). */
  private context(meta: RequestMeta, peerId?: string): ResourceLeaseCallContext {
    const named = peerId ? undefined : meta.caller || meta.principal || undefined;
    if (named !== undefined) text(named, requestSite("Rpc-Caller"), { max: Limits.peerIdLength });
    const resolved = peerId || named;
    return {
      ...(resolved ? { peerId: resolved } : {}),
      ...(meta.principal ? { principal: meta.principal } : {}),
      signal: meta.signal,
    };
  }

  private async enqueue(request: M.EnqueueRequest, meta: RequestMeta): Promise<M.EnqueueResponse> {
    const r = await this.engine.enqueue(request.payloads, this.context(meta));
    const stats = { pendingCount: r.stats.pendingCount, activeLeaseCount: r.stats.activeLeaseCount };
    return { sequenceIds: r.sequenceIds, duplicates: r.duplicates, stats, batch: request.batch };
  }

  private async lease(request: M.LeaseRequest, meta: RequestMeta): Promise<M.LeaseResponse> {
    // A wait longer than the queue allows is cut to its maxWaitMs (an empty answer then says "poll again"), never
    // refused: a worker configured for longer waits keeps working.
    let waitMs = this.ending ? 0 : Math.min(request.waitMs ?? 0, this.engine.settings.maxWaitMs);
    if (meta.deadline !== undefined) {
      // Answer (possibly empty) a little before the caller's deadline instead of letting it time out.
      waitMs = Math.max(0, Math.min(waitMs, meta.deadline - this.engine.clock.now() - DEADLINE_MARGIN_MS));
    }
    const context = this.context(meta, request.peerId);
    if (this.tracker && context.peerId) {
      this.tracker.recordPoll(context.peerId);
      // An ejected peer gets no new leases; the ones it holds keep working (heartbeat, complete and fail pass).
      const ejection = this.tracker.ejection(context.peerId);
      if (ejection) throw peerEjectedError(ejection, this.engine.clock.now());
    }
    const grants = await this.engine.lease({ ...context, waitMs, maxItems: request.maxItems ?? 1 });
    return { grants, batch: request.maxItems !== undefined };
  }

  private async complete(request: M.CompleteRequest, meta: RequestMeta): Promise<M.CompleteResponse> {
    const context = this.context(meta);
    if (!request.batch) {
      await this.engine.complete(request.ownershipTokens[0]!, context);
      return { results: [{ success: true }], batch: false };
    }
    const results = await this.engine.completeMany(request.ownershipTokens, context);
    return {
      results: results.map((r) =>
        r.success ? { success: true } : { success: false, code: r.error.code, message: r.error.message },
      ),
      batch: true,
    };
  }
}

/** A `cancel` or `history` that named its item by neither or both of `sequenceId` and `requestId`. */
function oneTargetError(verb: "cancel" | "history"): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.resourceLease.argumentInvalid,
    message: `Name the item to ${verb} by exactly one of sequenceId and requestId.`,
    metadata: { field: "sequenceId" },
  });
}
