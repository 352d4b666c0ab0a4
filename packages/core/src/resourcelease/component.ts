import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import type { ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryInboundMiddleware } from "../dispatcher/types.js";
import { omniError } from "../errors/omnirelay-error.js";
import type { PeerLeaseHealthTracker } from "../peers/index.js";
import type { ResourceLeaseQueueOptions } from "../queue/options.js";
import { ResourceLeaseQueue } from "../queue/queue.js";
import type { ResourceLeaseCallContext } from "../queue/types.js";
import { validatePeerId } from "../queue/validation.js";
import {
  decodeEnqueue,
  decodeRestoreItems,
  decodeToken,
  encodeDeadLetters,
  encodeGrant,
  encodePendingItems,
  encodeStats,
  field,
  optionalBool,
  optionalInt,
  optionalList,
  optionalStr,
  optionalStringMap,
} from "./wire.js";

/** The verbs a component registers, as `{namespace}::{verb}`. */
export const ResourceLeaseVerbs = [
  "enqueue",
  "lease",
  "heartbeat",
  "complete",
  "fail",
  "drain",
  "restore",
  "deadletters",
  "redrive",
  "stats",
] as const;

/** One of {@link ResourceLeaseVerbs}. */
export type ResourceLeaseVerb = (typeof ResourceLeaseVerbs)[number];

/** Options of a {@link ResourceLeaseDispatcherComponent}. */
export interface ResourceLeaseDispatcherComponentOptions {
  /** Procedure prefix; several components with different namespaces are shards. @defaultValue 'resourcelease' */
  readonly namespace?: string;
  /** A queue to serve (e.g. one rebuilt from a durable log). When absent, one is built from `queueOptions`. */
  readonly queue?: ResourceLeaseQueue;
  /** Options of the queue built when `queue` is absent. */
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

/**
 * Serves a {@link ResourceLeaseQueue} as the `{namespace}::*` procedures of a dispatcher (wire format in
 * docs/protocol.md).
 */
export class ResourceLeaseDispatcherComponent implements AsyncDisposable {
  readonly namespace: string;
  readonly queue: ResourceLeaseQueue;
  private readonly tracker: PeerLeaseHealthTracker | undefined;
  private readonly logger: Logger;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a bad namespace, already-exists
   * `omnirelay.procedure.duplicate` when the namespace is already served by the dispatcher.
   */
  constructor(dispatcher: Dispatcher, options: ResourceLeaseDispatcherComponentOptions = {}) {
    const namespace = options.namespace?.trim() || "resourcelease";
    if (!NAMESPACE.test(namespace)) {
      throw omniError("invalid-argument", "resourcelease.options.invalid", `Invalid namespace '${namespace}'.`, {
        option: "namespace",
      });
    }
    this.namespace = namespace;
    this.tracker = options.healthTracker;
    this.logger = options.logger ?? silentLogger;
    const tracker = options.healthTracker;
    this.queue =
      options.queue ??
      new ResourceLeaseQueue({
        ...options.queueOptions,
        name: options.queueOptions?.name ?? namespace,
        observers: [
          ...(options.queueOptions?.observers ?? []),
          ...(tracker ? [(e: ResourceLeaseReplicationEvent) => tracker.observe(e)] : []),
        ],
        ...(options.queueOptions?.logger ? {} : { logger: this.logger }),
      });
    const handlers: Record<ResourceLeaseVerb, (body: Record<string, unknown>, meta: RequestMeta) => Promise<unknown>> =
      {
        enqueue: (b, m) => this.enqueue(b, m),
        lease: (b, m) => this.lease(b, m),
        heartbeat: (b, m) => this.heartbeat(b, m),
        complete: (b, m) => this.complete(b, m),
        fail: (b, m) => this.fail(b, m),
        drain: (b, m) => this.drain(b, m),
        restore: (b, m) => this.restore(b, m),
        deadletters: async (b) => ({
          items: encodeDeadLetters(
            this.queue.deadLetters({ limit: optionalInt(b, "limit", 1, 100_000), maxBytes: PAGE_MAX_BYTES }),
          ),
        }),
        redrive: (b, m) => this.redrive(b, m),
        stats: async () => encodeStats(this.queue.stats()),
      };
    // Register all or nothing: a duplicate namespace must not leave half the verbs behind.
    for (const verb of ResourceLeaseVerbs) {
      if (dispatcher.lookup(`${namespace}::${verb}`)) {
        throw omniError(
          "already-exists",
          "omnirelay.procedure.duplicate",
          `Namespace '${namespace}' is already served.`,
          {
            procedure: `${namespace}::${verb}`,
          },
        );
      }
    }
    for (const verb of ResourceLeaseVerbs) {
      dispatcher.registerJson(`${namespace}::${verb}`, handlers[verb], {
        ...(options.middleware ? { middleware: options.middleware } : {}),
        labels: { kind: "resourcelease", namespace, verb },
      });
    }
  }

  /** Closes the queue. */
  async close(): Promise<void> {
    await this.queue.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private context(meta: RequestMeta, peerId?: string): ResourceLeaseCallContext {
    const resolved = validatePeerId(
      peerId || meta.caller || meta.principal || undefined,
      peerId ? "peerId" : "Rpc-Caller",
    );
    return {
      ...(resolved ? { peerId: resolved } : {}),
      ...(meta.principal ? { principal: meta.principal } : {}),
      signal: meta.signal,
    };
  }

  private async enqueue(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const { payloads, batch } = decodeEnqueue(body);
    const r = await this.queue.enqueueMany(payloads, this.context(meta));
    const stats = { pendingCount: r.stats.pendingCount, activeLeaseCount: r.stats.activeLeaseCount };
    if (batch) return { sequenceIds: r.sequenceIds, duplicates: r.duplicates, stats };
    return { sequenceId: r.sequenceIds[0], ...(r.duplicates[0] ? { duplicate: true } : {}), stats };
  }

  private async lease(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const peerId = optionalStr(body, "peerId");
    const maxItems = optionalInt(body, "maxItems", 1, 100_000);
    // A wait longer than the queue allows is cut to its maxWaitMs (an empty answer then says "poll again"), never
    // refused: a worker configured for longer waits keeps working.
    let waitMs = Math.min(optionalInt(body, "waitMs", 0, Number.MAX_SAFE_INTEGER) ?? 0, this.queue.maxWaitMs);
    if (meta.deadline !== undefined) {
      // Answer (possibly empty) a little before the caller's deadline instead of letting it time out.
      waitMs = Math.max(0, Math.min(waitMs, meta.deadline - Date.now() - 25));
    }
    const context = this.context(meta, peerId);
    if (this.tracker && context.peerId) this.tracker.recordPoll(context.peerId);
    const grants = await this.queue.lease({ ...context, waitMs, ...(maxItems !== undefined ? { maxItems } : {}) });
    if (maxItems !== undefined) return { items: grants.map(encodeGrant) };
    return grants[0] ? encodeGrant(grants[0]) : {};
  }

  private async heartbeat(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const r = await this.queue.heartbeat(decodeToken(field(body, "ownershipToken")), this.context(meta));
    return { success: true, leaseExpiresAt: new Date(r.leaseExpiresAt).toISOString(), remainingMs: r.remainingMs };
  }

  private async complete(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const list = optionalList(body, "ownershipTokens");
    if (list === undefined) {
      await this.queue.complete(decodeToken(field(body, "ownershipToken")), this.context(meta));
      return { success: true };
    }
    const tokens: ResourceLeaseOwnershipToken[] = list.map((t, i) => decodeToken(t, `ownershipTokens[${i}]`));
    const results = await this.queue.completeMany(tokens, this.context(meta));
    return {
      success: results.every((r) => r.success),
      results: results.map((r) =>
        r.success ? { success: true } : { success: false, code: r.error.code, message: r.error.message },
      ),
    };
  }

  private async fail(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const token = decodeToken(field(body, "ownershipToken"));
    const reason = optionalStr(body, "reason");
    const errorCode = optionalStr(body, "errorCode");
    const requeue = optionalBool(body, "requeue");
    const delayMs = optionalInt(body, "delayMs", 0, 7 * 24 * 3_600_000);
    const metadata = optionalStringMap(body, "metadata");
    const outcome = await this.queue.fail(token, {
      ...this.context(meta),
      ...(reason !== undefined ? { reason } : {}),
      ...(errorCode !== undefined ? { errorCode } : {}),
      ...(requeue !== undefined ? { requeue } : {}),
      ...(delayMs !== undefined ? { delayMs } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
    });
    return { success: true, outcome };
  }

  private async drain(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const maxItems = optionalInt(body, "maxItems", 1, DRAIN_PAGE_ITEMS) ?? DRAIN_PAGE_ITEMS;
    const items = await this.queue.drain({ ...this.context(meta), maxItems, maxBytes: PAGE_MAX_BYTES });
    return { items: encodePendingItems(items), remainingCount: this.queue.stats().pendingCount };
  }

  private async restore(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const items = decodeRestoreItems(body, Date.now());
    const renumber = optionalBool(body, "renumber") ?? false;
    const r = await this.queue.restoreItems(items, { ...this.context(meta), renumber });
    return renumber ? r : { restoredCount: r.restoredCount };
  }

  private async redrive(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const list = optionalList(body, "sequenceIds");
    const ids = list?.map((v, i) => {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
        throw omniError(
          "invalid-argument",
          "resourcelease.argument.invalid",
          `sequenceIds[${i}] must be an integer >= 1.`,
          {
            field: `sequenceIds[${i}]`,
          },
        );
      }
      return v;
    });
    const redrivenCount = await this.queue.redrive({ ...this.context(meta), ...(ids ? { sequenceIds: ids } : {}) });
    return { redrivenCount };
  }
}
