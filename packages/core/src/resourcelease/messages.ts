import type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueStats,
} from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import type { ResourceLeaseFailOutcome } from "../queue/types.js";
import { getPropertyIgnoreCase } from "../wire/case-insensitive.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { f, message, orElse, required, type WireForm, type WireMessage } from "../wire/message.js";
import {
  DeadLetterItem,
  Grant,
  OwnershipToken,
  Payload,
  PendingItem,
  QueueStats,
  type RestoreItem,
  RestoreItemMessage,
} from "../wire/messages.js";
import { child, fail, type Site } from "../wire/site.js";
import * as v from "../wire/values.js";

// Each verb's request and response, described once (docs/protocol.md's table). Some verbs have two JSON shapes — a
// single item or a batch — that are one message here with a `batch` flag; gRPC has an rpc per shape.

/** `enqueue`: `{payload}` (one item) or `{payloads: […]}` (a batch). */
export interface EnqueueRequest {
  readonly payloads: readonly ResourceLeaseItemPayload[];
  readonly batch: boolean;
}

/** Counters an enqueue answers with. */
export interface EnqueueStats {
  readonly pendingCount: number;
  readonly activeLeaseCount: number;
}

/** `enqueue`'s answer: `{sequenceId, duplicate?, stats}` or `{sequenceIds, duplicates, stats}`. */
export interface EnqueueResponse {
  readonly sequenceIds: readonly number[];
  readonly duplicates: readonly boolean[];
  readonly stats: EnqueueStats;
  readonly batch: boolean;
}

/** `lease`: with `maxItems` the answer is a batch. */
export interface LeaseRequest {
  readonly peerId?: string;
  readonly waitMs?: number;
  readonly maxItems?: number;
}

/** `lease`'s answer: one grant or `{}`, or `{items: […]}` when the request gave `maxItems`. */
export interface LeaseResponse {
  readonly grants: readonly ResourceLeaseGrant[];
  readonly batch: boolean;
}

/** `heartbeat`. */
export interface HeartbeatRequest {
  readonly ownershipToken: ResourceLeaseOwnershipToken;
}

/** `heartbeat`'s answer. */
export interface HeartbeatResponse {
  readonly leaseExpiresAt: number;
  readonly remainingMs: number;
}

/** `complete`: `{ownershipToken}` or `{ownershipTokens: […]}`. */
export interface CompleteRequest {
  readonly ownershipTokens: readonly ResourceLeaseOwnershipToken[];
  readonly batch: boolean;
}

/** The result of one token of a batch complete. */
export interface CompleteResult {
  readonly success: boolean;
  readonly code?: string;
  readonly message?: string;
}

/** `complete`'s answer: `{success}`, or `{success, results}` for a batch. */
export interface CompleteResponse {
  readonly results: readonly CompleteResult[];
  readonly batch: boolean;
}

/** `fail`. */
export interface FailRequest {
  readonly ownershipToken: ResourceLeaseOwnershipToken;
  readonly reason?: string;
  readonly errorCode?: string;
  readonly requeue?: boolean;
  readonly delayMs?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** `fail`'s answer. */
export interface FailResponse {
  readonly outcome: ResourceLeaseFailOutcome;
}

/** `drain`: one page. */
export interface DrainRequest {
  readonly maxItems?: number;
}

/** `drain`'s answer: a page and what remains. */
export interface DrainResponse {
  readonly items: readonly ResourceLeasePendingItem[];
  readonly remainingCount: number;
}

/** `restore`. */
export interface RestoreRequest {
  readonly items: readonly RestoreItem[];
  readonly renumber?: boolean;
}

/** `restore`'s answer; `sequenceIds` when the request asked for `renumber`. */
export interface RestoreResponse {
  readonly restoredCount: number;
  readonly sequenceIds?: readonly number[];
}

/** `deadletters`. */
export interface DeadLettersRequest {
  readonly limit?: number;
}

/** `deadletters`'s answer. */
export interface DeadLettersResponse {
  readonly items: readonly ResourceLeaseDeadLetterItem[];
}

/** `redrive`: without `sequenceIds`, every dead letter. */
export interface RedriveRequest {
  readonly sequenceIds?: readonly number[];
}

/** `redrive`'s answer. */
export interface RedriveResponse {
  readonly redrivenCount: number;
}

/** A message whose JSON has two shapes: read and written by hand from the one family of fields. */
function shaped<T>(
  read: (source: Record<string, unknown>, site: Site) => T,
  write: (value: T, form: WireForm) => Record<string, unknown>,
): WireMessage<T> {
  const readMessage = (value: unknown, site: Site): T => read(v.object(value, site) ?? {}, site);
  // Two JSON shapes: the procedure table in docs/protocol.md describes them; no single JSON Schema object does.
  const schema = () => ({ type: "object" });
  return { read: readMessage, write, schema, field: { read: readMessage, write, schema } };
}

const get = getPropertyIgnoreCase;

const payloadList = f.list(required(Payload, ErrorCodes.resourceLease.payloadRequired), { max: 100_000 });
const tokenList = f.list(required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired), { max: 100_000 });
const requiredToken = required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired);
const enqueueStats = message<EnqueueStats>({
  pendingCount: f.int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid }),
  activeLeaseCount: f.int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid }),
});
const ids = f.list(f.int({ min: 1 }), { max: 100_000 });

/** `enqueue`. */
export const EnqueueRequestMessage = shaped<EnqueueRequest>(
  (source, site) => {
    const list = get(source, "payloads");
    if (!v.absent(list)) {
      const payloads = payloadList.read(list, child(site, "payloads"))!;
      if (payloads.length === 0)
        fail(child(site, "payloads"), ErrorCodes.resourceLease.payloadRequired, "payloads must not be empty.");
      return { payloads, batch: true };
    }
    return {
      payloads: [
        required(Payload, ErrorCodes.resourceLease.payloadRequired).read(
          get(source, "payload"),
          child(site, "payload"),
        )!,
      ],
      batch: false,
    };
  },
  (value, form) =>
    value.batch
      ? { payloads: value.payloads.map((p) => Payload.write(p, form)) }
      : { payload: Payload.write(value.payloads[0]!, form) },
);

/** `enqueue`'s answer. */
export const EnqueueResponseMessage = shaped<EnqueueResponse>(
  (source, site) => {
    const stats = required(enqueueStats, ErrorCodes.resourceLease.argumentInvalid).read(
      get(source, "stats"),
      child(site, "stats"),
    )!;
    const list = get(source, "sequenceIds");
    if (!v.absent(list)) {
      const flags = f.list(f.bool()).read(get(source, "duplicates"), child(site, "duplicates")) ?? [];
      return { sequenceIds: ids.read(list, child(site, "sequenceIds"))!, duplicates: flags, stats, batch: true };
    }
    const id = f
      .int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid })
      .read(get(source, "sequenceId"), child(site, "sequenceId"))!;
    const duplicate = f.bool().read(get(source, "duplicate"), child(site, "duplicate")) ?? false;
    return { sequenceIds: [id], duplicates: [duplicate], stats, batch: false };
  },
  (value) =>
    value.batch
      ? { sequenceIds: [...value.sequenceIds], duplicates: [...value.duplicates], stats: { ...value.stats } }
      : {
          sequenceId: value.sequenceIds[0],
          ...(value.duplicates[0] ? { duplicate: true } : {}),
          stats: { ...value.stats },
        },
);

/** `lease`. `waitMs` may be any size here; the queue cuts it to its `maxWaitMs`. */
export const LeaseRequestMessage = message<LeaseRequest>({
  peerId: f.text({ max: Limits.peerIdLength, code: ErrorCodes.resourceLease.argumentInvalid }),
  waitMs: f.int({ min: 0 }),
  maxItems: f.int({ min: 1, max: 100_000 }),
});

/** `lease`'s answer. */
export const LeaseResponseMessage = shaped<LeaseResponse>(
  (source, site) => {
    const items = get(source, "items");
    if (!v.absent(items)) return { grants: f.list(Grant.field).read(items, child(site, "items"))!, batch: true };
    return { grants: Object.keys(source).length === 0 ? [] : [Grant.read(source, site)], batch: false };
  },
  (value, form) =>
    value.batch
      ? { items: value.grants.map((g) => Grant.write(g, form)) }
      : value.grants[0]
        ? Grant.write(value.grants[0], form)
        : {},
);

/** `heartbeat`. */
export const HeartbeatRequestMessage = message<HeartbeatRequest>({ ownershipToken: requiredToken });

/** `heartbeat`'s answer (`success` is always true: a refused heartbeat is an error). */
export const HeartbeatResponseMessage = shaped<HeartbeatResponse>(
  (source, site) => ({
    leaseExpiresAt: f
      .time({ required: ErrorCodes.resourceLease.argumentInvalid })
      .read(get(source, "leaseExpiresAt"), child(site, "leaseExpiresAt"))!,
    remainingMs: f
      .int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid })
      .read(get(source, "remainingMs"), child(site, "remainingMs"))!,
  }),
  (value) => ({
    success: true,
    leaseExpiresAt: new Date(value.leaseExpiresAt).toISOString(),
    remainingMs: value.remainingMs,
  }),
);

/** `complete`. */
export const CompleteRequestMessage = shaped<CompleteRequest>(
  (source, site) => {
    const list = get(source, "ownershipTokens");
    if (!v.absent(list)) return { ownershipTokens: tokenList.read(list, child(site, "ownershipTokens"))!, batch: true };
    return {
      ownershipTokens: [requiredToken.read(get(source, "ownershipToken"), child(site, "ownershipToken"))!],
      batch: false,
    };
  },
  (value, form) =>
    value.batch
      ? { ownershipTokens: value.ownershipTokens.map((t) => OwnershipToken.write(t, form)) }
      : { ownershipToken: OwnershipToken.write(value.ownershipTokens[0]!, form) },
);

const completeResult = message<CompleteResult>({
  success: f.bool(),
  code: f.text({ max: Number.MAX_SAFE_INTEGER }),
  message: f.text({ max: Number.MAX_SAFE_INTEGER }),
});

/** `complete`'s answer. */
export const CompleteResponseMessage = shaped<CompleteResponse>(
  (source, site) => {
    const results = get(source, "results");
    if (!v.absent(results)) {
      return { results: f.list(completeResult.field).read(results, child(site, "results"))!, batch: true };
    }
    return {
      results: [{ success: f.bool().read(get(source, "success"), child(site, "success")) ?? false }],
      batch: false,
    };
  },
  (value) =>
    value.batch
      ? { success: value.results.every((r) => r.success), results: value.results.map((r) => completeResult.write(r)) }
      : { success: value.results[0]?.success ?? false },
);

/** `fail`. */
export const FailRequestMessage = message<FailRequest>({
  ownershipToken: requiredToken,
  reason: f.text({ max: Limits.errorMessageLength, code: ErrorCodes.resourceLease.argumentInvalid }),
  errorCode: f.text({ max: Limits.errorCodeLength, code: ErrorCodes.resourceLease.argumentInvalid }),
  requeue: f.bool(),
  delayMs: f.int({ min: 0, max: 7 * 24 * 3_600_000 }),
  metadata: f.map(ErrorCodes.resourceLease.argumentInvalid),
});

/** `fail`'s answer. */
export const FailResponseMessage = shaped<FailResponse>(
  (source, site) => ({
    outcome: f
      .oneOf(["requeued", "delayed", "dead_lettered"] as const, { required: ErrorCodes.resourceLease.argumentInvalid })
      .read(get(source, "outcome"), child(site, "outcome"))!,
  }),
  (value) => ({ success: true, outcome: value.outcome }),
);

/** `drain`. */
export const DrainRequestMessage = message<DrainRequest>({ maxItems: f.int({ min: 1, max: 1000 }) });

/** `drain`'s answer. A server from before paged drains sends no `remainingCount`: read as 0 (it answered everything). */
export const DrainResponseMessage = message<DrainResponse>({
  items: orElse(f.list(PendingItem.field), []),
  remainingCount: orElse(f.int({ min: 0 }), 0),
});

/** `restore`. */
export const RestoreRequestMessage = message<RestoreRequest>({
  items: orElse(
    f.list(required(RestoreItemMessage, ErrorCodes.resourceLease.restorePendingItemRequired), { max: 100_000 }),
    [],
  ),
  renumber: f.bool(),
});

/** `restore`'s answer. */
export const RestoreResponseMessage = message<RestoreResponse>({
  restoredCount: f.int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid }),
  sequenceIds: ids,
});

/** `deadletters`. */
export const DeadLettersRequestMessage = message<DeadLettersRequest>({ limit: f.int({ min: 1, max: 100_000 }) });

/** `deadletters`'s answer. */
export const DeadLettersResponseMessage = message<DeadLettersResponse>({
  items: orElse(f.list(DeadLetterItem.field), []),
});

/** `redrive`. */
export const RedriveRequestMessage = message<RedriveRequest>({ sequenceIds: ids });

/** `redrive`'s answer. */
export const RedriveResponseMessage = message<RedriveResponse>({
  redrivenCount: f.int({ min: 0, required: ErrorCodes.resourceLease.argumentInvalid }),
});

/** `stats`: no fields. */
export const StatsRequestMessage = message<Record<string, never>>({});

/** `stats`'s answer. */
export const StatsResponseMessage: WireMessage<ResourceLeaseQueueStats> = QueueStats;

export type {
  CancelRequest,
  CancelResponse,
  ScheduleListRequest,
  ScheduleListResponse,
  ScheduleRemoveRequest,
  ScheduleRemoveResponse,
  ScheduleSetRequest,
  ScheduleSetResponse,
} from "./schedule-messages.js";
