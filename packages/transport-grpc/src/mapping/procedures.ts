import type { MethodDefinition } from "@grpc/grpc-js";
import { OmniRelayError, ResourceLeaseErrorCodes } from "@omnirelay/core";
import { GrpcTransportErrorCodes } from "../codes.js";
import {
  type CompleteBatchRequest,
  type CompleteBatchResponse,
  type CompleteRequest,
  type CompleteResponse,
  type DeadLettersRequest,
  type DeadLettersResponse,
  type DrainRequest,
  type DrainResponse,
  type EnqueueBatchRequest,
  type EnqueueBatchResponse,
  type EnqueueRequest,
  type EnqueueResponse,
  type FailRequest,
  type FailResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LeaseBatchRequest,
  type LeaseBatchResponse,
  type LeaseRequest,
  type LeaseResponse,
  type RedriveRequest,
  type RedriveResponse,
  ResourceLeaseServiceService,
  type RestoreRequest,
  type RestoreResponse,
  type StatsRequest,
  type StatsResponse,
} from "../gen/omnirelay/resourcelease/v1/resourcelease.js";
import { absent, type Json, JsonReader, mapToJson, put } from "./json-reader.js";
import {
  deadLetterItemFromJson,
  deadLetterItemToJson,
  grantFromJson,
  grantToJson,
  payloadFromJson,
  payloadToJson,
  pendingItemFromJson,
  pendingItemToJson,
  statsFromJson,
  statsToJson,
  tokenFromJson,
  tokenToJson,
} from "./parts.js";

/** Name of an rpc of `omnirelay.resourcelease.v1.ResourceLeaseService` (the ts-proto method key, e.g. `enqueueBatch`). */
export type ResourceLeaseRpcName = keyof typeof ResourceLeaseServiceService;

/**
 * One rpc of the ResourceLease service and the lossless mapping between its messages and the JSON DTOs of the
 * dispatcher procedure `{namespace}::{verb}` (DESIGN.md §4).
 */
export interface ResourceLeaseRpc<Req = unknown, Res = unknown> {
  /** The rpc, e.g. `enqueueBatch`. */
  readonly name: ResourceLeaseRpcName;
  /** The procedure verb it carries, e.g. `enqueue`. */
  readonly verb: string;
  /** The grpc-js method definition (path and codecs). */
  readonly method: MethodDefinition<Req, Res>;
  /** Request message → the JSON request body of the procedure. */
  requestToJson(request: Req): Json;
  /**
   * JSON request body → request message.
   * @throws OmniRelayError invalid-argument (the code core's HTTP decoder uses for that field) when a value has a
   *   type no proto field can carry; metadata `field`.
   */
  requestFromJson(body: Json): Req;
  /** Response message → the JSON response body of the procedure. */
  responseToJson(response: Res): Json;
  /**
   * JSON response body → response message.
   * @throws OmniRelayError internal `omnirelay.grpc.response_invalid` when the procedure answered something the
   *   message cannot carry; metadata `field`.
   */
  responseFromJson(body: Json): Res;
}

// Request bodies come from callers: a bad value is their mistake. Response bodies come from our own procedures.
const req = new JsonReader((field, message, code) => {
  throw new OmniRelayError({ status: "invalid-argument", code, message, metadata: { field } });
});
const res = new JsonReader((field, message) => {
  throw new OmniRelayError({
    status: "internal",
    code: GrpcTransportErrorCodes.responseInvalid,
    message: `The procedure's response cannot be sent over gRPC: ${message}`,
    metadata: { field },
  });
});

const Arg = ResourceLeaseErrorCodes.argumentInvalid;

type Spec<Req, Res> = Omit<ResourceLeaseRpc<Req, Res>, "method" | "name">;

function define<K extends ResourceLeaseRpcName, Req, Res>(name: K, spec: Spec<Req, Res>): ResourceLeaseRpc<Req, Res> {
  return { name, method: ResourceLeaseServiceService[name] as unknown as MethodDefinition<Req, Res>, ...spec };
}

const emptyRequest = <T extends StatsRequest>(verb: string) =>
  ({
    verb,
    requestToJson: () => ({}),
    requestFromJson: () => ({}) as T,
  }) as const;

const enqueue = define<"enqueue", EnqueueRequest, EnqueueResponse>("enqueue", {
  verb: "enqueue",
  requestToJson: (m) => (m.payload ? { payload: payloadToJson(m.payload) } : {}),
  requestFromJson: (b) => ({ payload: payloadFromJson(req, req.get(b, "payload"), "payload") }),
  responseToJson: (m) => {
    const out: Json = { sequenceId: m.sequenceId };
    put(out, "duplicate", m.duplicate);
    put(out, "stats", m.stats && statsToJson(m.stats));
    return out;
  },
  responseFromJson: (b) => ({
    sequenceId: res.int(res.get(b, "sequenceId"), "sequenceId", Arg) ?? 0,
    duplicate: res.bool(res.get(b, "duplicate"), "duplicate", Arg),
    stats: statsFromJson(res, res.get(b, "stats"), "stats"),
  }),
});

const enqueueBatch = define<"enqueueBatch", EnqueueBatchRequest, EnqueueBatchResponse>("enqueueBatch", {
  verb: "enqueue",
  requestToJson: (m) => ({ payloads: m.payloads.map(payloadToJson) }),
  requestFromJson: (b) => ({
    payloads: (req.list(req.get(b, "payloads"), "payloads", Arg) ?? []).map((p, i) => {
      const payload = payloadFromJson(req, p, `payloads[${i}]`);
      return (
        payload ?? req.fail(`payloads[${i}]`, `payloads[${i}] is required.`, ResourceLeaseErrorCodes.payloadRequired)
      );
    }),
  }),
  responseToJson: (m) => {
    const out: Json = { sequenceIds: [...m.sequenceIds], duplicates: [...m.duplicates] };
    put(out, "stats", m.stats && statsToJson(m.stats));
    return out;
  },
  responseFromJson: (b) => ({
    sequenceIds: res.intList(res.get(b, "sequenceIds"), "sequenceIds", Arg) ?? [],
    duplicates: res.boolList(res.get(b, "duplicates"), "duplicates", Arg) ?? [],
    stats: statsFromJson(res, res.get(b, "stats"), "stats"),
  }),
});

function leaseOptionsToJson(m: { peerId?: string | undefined; waitMs?: number | undefined }): Json {
  const out: Json = {};
  put(out, "peerId", m.peerId);
  put(out, "waitMs", m.waitMs);
  return out;
}

const lease = define<"lease", LeaseRequest, LeaseResponse>("lease", {
  verb: "lease",
  requestToJson: leaseOptionsToJson,
  requestFromJson: (b) => ({
    peerId: req.str(req.get(b, "peerId"), "peerId", Arg),
    waitMs: req.int(req.get(b, "waitMs"), "waitMs", Arg),
  }),
  // The JSON grant sits at the top level; `{}` means no item was available.
  responseToJson: (m) => (m.grant ? grantToJson(m.grant) : {}),
  responseFromJson: (b) => ({
    grant: Object.values(b).some((v) => !absent(v)) ? grantFromJson(res, b, "grant") : undefined,
  }),
});

const leaseBatch = define<"leaseBatch", LeaseBatchRequest, LeaseBatchResponse>("leaseBatch", {
  verb: "lease",
  requestToJson: (m) => ({ ...leaseOptionsToJson(m), maxItems: m.maxItems }),
  requestFromJson: (b) => ({
    peerId: req.str(req.get(b, "peerId"), "peerId", Arg),
    waitMs: req.int(req.get(b, "waitMs"), "waitMs", Arg),
    maxItems: req.int(req.get(b, "maxItems"), "maxItems", Arg) ?? 0,
  }),
  responseToJson: (m) => ({ items: m.items.map(grantToJson) }),
  responseFromJson: (b) => ({
    items: (res.list(res.get(b, "items"), "items", Arg) ?? []).map((g, i) => grantFromJson(res, g, `items[${i}]`)),
  }),
});

function tokenRequestToJson(m: HeartbeatRequest | CompleteRequest): Json {
  return m.ownershipToken ? { ownershipToken: tokenToJson(m.ownershipToken) } : {};
}

function tokenRequestFromJson(b: Json): HeartbeatRequest & CompleteRequest {
  return { ownershipToken: tokenFromJson(req, req.get(b, "ownershipToken"), "ownershipToken") };
}

const heartbeat = define<"heartbeat", HeartbeatRequest, HeartbeatResponse>("heartbeat", {
  verb: "heartbeat",
  requestToJson: tokenRequestToJson,
  requestFromJson: tokenRequestFromJson,
  responseToJson: (m) => ({ success: m.success, leaseExpiresAt: m.leaseExpiresAt, remainingMs: m.remainingMs }),
  responseFromJson: (b) => ({
    success: res.bool(res.get(b, "success"), "success", Arg) ?? false,
    leaseExpiresAt: res.time(res.get(b, "leaseExpiresAt"), "leaseExpiresAt", Arg) ?? "",
    remainingMs: res.int(res.get(b, "remainingMs"), "remainingMs", Arg) ?? 0,
  }),
});

const complete = define<"complete", CompleteRequest, CompleteResponse>("complete", {
  verb: "complete",
  requestToJson: tokenRequestToJson,
  requestFromJson: tokenRequestFromJson,
  responseToJson: (m) => ({ success: m.success }),
  responseFromJson: (b) => ({ success: res.bool(res.get(b, "success"), "success", Arg) ?? false }),
});

const completeBatch = define<"completeBatch", CompleteBatchRequest, CompleteBatchResponse>("completeBatch", {
  verb: "complete",
  requestToJson: (m) => ({ ownershipTokens: m.ownershipTokens.map(tokenToJson) }),
  requestFromJson: (b) => ({
    ownershipTokens: (req.list(req.get(b, "ownershipTokens"), "ownershipTokens", Arg) ?? []).map((t, i) => {
      const field = `ownershipTokens[${i}]`;
      return (
        tokenFromJson(req, t, field) ?? req.fail(field, `${field} is required.`, ResourceLeaseErrorCodes.tokenRequired)
      );
    }),
  }),
  responseToJson: (m) => ({
    success: m.success,
    results: m.results.map((r) => {
      const out: Json = { success: r.success };
      put(out, "code", r.code);
      put(out, "message", r.message);
      return out;
    }),
  }),
  responseFromJson: (b) => ({
    success: res.bool(res.get(b, "success"), "success", Arg) ?? false,
    results: (res.list(res.get(b, "results"), "results", Arg) ?? []).map((value, i) => {
      const r = res.object(value, `results[${i}]`, Arg) ?? {};
      return {
        success: res.bool(res.get(r, "success"), `results[${i}].success`, Arg) ?? false,
        code: res.str(res.get(r, "code"), `results[${i}].code`, Arg),
        message: res.str(res.get(r, "message"), `results[${i}].message`, Arg),
      };
    }),
  }),
});

const fail = define<"fail", FailRequest, FailResponse>("fail", {
  verb: "fail",
  requestToJson: (m) => {
    const out: Json = m.ownershipToken ? { ownershipToken: tokenToJson(m.ownershipToken) } : {};
    put(out, "reason", m.reason);
    put(out, "errorCode", m.errorCode);
    put(out, "requeue", m.requeue);
    put(out, "delayMs", m.delayMs);
    put(out, "metadata", mapToJson(m.metadata));
    return out;
  },
  requestFromJson: (b) => ({
    ownershipToken: tokenFromJson(req, req.get(b, "ownershipToken"), "ownershipToken"),
    reason: req.str(req.get(b, "reason"), "reason", Arg),
    errorCode: req.str(req.get(b, "errorCode"), "errorCode", Arg),
    requeue: req.bool(req.get(b, "requeue"), "requeue", Arg),
    delayMs: req.int(req.get(b, "delayMs"), "delayMs", Arg),
    metadata: req.stringMap(req.get(b, "metadata"), "metadata", Arg),
  }),
  responseToJson: (m) => ({ success: m.success, outcome: m.outcome }),
  responseFromJson: (b) => ({
    success: res.bool(res.get(b, "success"), "success", Arg) ?? false,
    outcome: res.str(res.get(b, "outcome"), "outcome", Arg) ?? "",
  }),
});

const drain = define<"drain", DrainRequest, DrainResponse>("drain", {
  verb: "drain",
  requestToJson: (m) => (m.maxItems === undefined ? {} : { maxItems: m.maxItems }),
  requestFromJson: (b) => ({ maxItems: req.int(req.get(b, "maxItems"), "maxItems", Arg) }),
  responseToJson: (m) => ({ items: m.items.map(pendingItemToJson), remainingCount: m.remainingCount }),
  responseFromJson: (b) => ({
    items: (res.list(res.get(b, "items"), "items", Arg) ?? []).map((v, i) =>
      pendingItemFromJson(res, v, `items[${i}]`),
    ),
    remainingCount: res.int(res.get(b, "remainingCount"), "remainingCount", Arg) ?? 0,
  }),
});

const restore = define<"restore", RestoreRequest, RestoreResponse>("restore", {
  verb: "restore",
  requestToJson: (m) => ({
    items: m.items.map(pendingItemToJson),
    ...(m.renumber !== undefined ? { renumber: m.renumber } : {}),
  }),
  requestFromJson: (b) => ({
    items: (req.list(req.get(b, "items"), "items", Arg) ?? []).map((v, i) =>
      pendingItemFromJson(req, v, `items[${i}]`),
    ),
    renumber: req.bool(req.get(b, "renumber"), "renumber", Arg),
  }),
  responseToJson: (m) => ({
    restoredCount: m.restoredCount,
    ...(m.sequenceIds.length > 0 ? { sequenceIds: [...m.sequenceIds] } : {}),
  }),
  responseFromJson: (b) => ({
    restoredCount: res.int(res.get(b, "restoredCount"), "restoredCount", Arg) ?? 0,
    sequenceIds: res.intList(res.get(b, "sequenceIds"), "sequenceIds", Arg) ?? [],
  }),
});

const deadLetters = define<"deadLetters", DeadLettersRequest, DeadLettersResponse>("deadLetters", {
  verb: "deadletters",
  requestToJson: (m) => (m.limit === undefined ? {} : { limit: m.limit }),
  requestFromJson: (b) => ({ limit: req.int(req.get(b, "limit"), "limit", Arg) }),
  responseToJson: (m) => ({ items: m.items.map(deadLetterItemToJson) }),
  responseFromJson: (b) => ({
    items: (res.list(res.get(b, "items"), "items", Arg) ?? []).map((v, i) =>
      deadLetterItemFromJson(res, v, `items[${i}]`),
    ),
  }),
});

const redrive = define<"redrive", RedriveRequest, RedriveResponse>("redrive", {
  verb: "redrive",
  requestToJson: (m) => (m.sequenceIds ? { sequenceIds: [...m.sequenceIds.values] } : {}),
  requestFromJson: (b) => {
    const values = req.intList(req.get(b, "sequenceIds"), "sequenceIds", Arg);
    return { sequenceIds: values ? { values } : undefined };
  },
  responseToJson: (m) => ({ redrivenCount: m.redrivenCount }),
  responseFromJson: (b) => ({ redrivenCount: res.int(res.get(b, "redrivenCount"), "redrivenCount", Arg) ?? 0 }),
});

const stats = define<"stats", StatsRequest, StatsResponse>("stats", {
  ...emptyRequest<StatsRequest>("stats"),
  responseToJson: statsToJson,
  responseFromJson: (b) => statsFromJson(res, b, "stats") ?? { pendingCount: 0, activeLeaseCount: 0 },
});

/** Every rpc of the ResourceLease service with its JSON mapping, keyed by rpc name. */
export const resourceLeaseRpcs: Readonly<Record<ResourceLeaseRpcName, ResourceLeaseRpc>> = {
  enqueue,
  enqueueBatch,
  lease,
  leaseBatch,
  heartbeat,
  complete,
  completeBatch,
  fail,
  drain,
  restore,
  deadLetters,
  redrive,
  stats,
} as unknown as Readonly<Record<ResourceLeaseRpcName, ResourceLeaseRpc>>;

/**
 * Picks the rpc that carries a procedure call: the verb (matched case-insensitively) and, for the verbs with a batch
 * form, the presence of `payloads`, `maxItems` or `ownershipTokens` in the JSON body. `undefined` for a verb the
 * service does not have.
 */
export function selectResourceLeaseRpc(verb: string, body: Json): ResourceLeaseRpc | undefined {
  const has = (name: string) => !absent(req.get(body, name));
  const wanted = verb.trim().toLowerCase();
  const rpcs = resourceLeaseRpcs;
  switch (wanted) {
    case "enqueue":
      return has("payloads") ? rpcs.enqueueBatch : rpcs.enqueue;
    case "lease":
      return has("maxItems") ? rpcs.leaseBatch : rpcs.lease;
    case "complete":
      return has("ownershipTokens") ? rpcs.completeBatch : rpcs.complete;
    default:
      return Object.values(rpcs).find((r) => r.verb === wanted);
  }
}
