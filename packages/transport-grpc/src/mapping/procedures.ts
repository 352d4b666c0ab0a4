import type { MethodDefinition } from "@grpc/grpc-js";
import { type ProcedureDefinition, ResourceLeaseProcedures, type ResourceLeaseVerb } from "@omnirelay/core";
import * as G from "../gen/omnirelay/resourcelease/v1/resourcelease.js";

// Protobuf ⇄ domain for the ResourceLease service. ts-proto messages carry the fields of core's wire descriptions
// under the same camelCase names (times as ISO-8601 strings, bytes raw), so each rpc needs only what differs in
// shape: the rpc a verb's message travels on, and the few places where the protobuf nests what JSON keeps flat.
// Decoding and checking are core's (the procedure's `readRequest`, the definition's response reader); nothing here
// reads or writes JSON.

/** Name of an rpc of `omnirelay.resourcelease.v1.ResourceLeaseService` (the ts-proto method key, e.g. `enqueueBatch`). */
export type ResourceLeaseRpcName = Exclude<keyof typeof G.ResourceLeaseServiceService, "session">;

type Fields = Record<string, unknown>;

/** Builds a protobuf message from a partial object (ts-proto's `fromPartial`: defaults for absent fields). */
interface MessageType {
  fromPartial(object: Fields): unknown;
}

/** One rpc of the ResourceLease service and how its messages map onto its procedure's. */
export interface ResourceLeaseRpc {
  /** The rpc, e.g. `enqueueBatch`. */
  readonly name: ResourceLeaseRpcName;
  /** The procedure verb it carries, e.g. `enqueue`. */
  readonly verb: ResourceLeaseVerb;
  /** The grpc-js method definition (path and codecs). */
  readonly method: MethodDefinition<unknown, unknown>;
  /** A request message as the procedure's request reader takes it. */
  fromRequest(message: Fields): Fields;
  /** The procedure's request (written in proto form) as this rpc's request message. */
  toRequest(written: Fields): unknown;
  /** A response message as the procedure's response reader takes it. */
  fromResponse(message: Fields): Fields;
  /** The procedure's response (written in proto form) as this rpc's response message. */
  toResponse(written: Fields): unknown;
}

const same = (value: Fields): Fields => value;

/**
 * How one rpc carries a procedure: the verb, the two message types and, where the protobuf shape differs from the
 * procedure's, how to reshape each direction (as it is, when absent).
 */
interface RpcShape {
  readonly verb: ResourceLeaseVerb;
  readonly request: MessageType;
  readonly response: MessageType;
  readonly fromRequest?: (m: Fields) => Fields;
  readonly toRequest?: (w: Fields) => Fields;
  readonly fromResponse?: (m: Fields) => Fields;
  readonly toResponse?: (w: Fields) => Fields;
}

function rpc(name: ResourceLeaseRpcName, shape: RpcShape): ResourceLeaseRpc {
  const { verb } = shape;
  const toRequest = shape.toRequest ?? same;
  const toResponse = shape.toResponse ?? same;
  return {
    name,
    verb,
    method: G.ResourceLeaseServiceService[name] as unknown as MethodDefinition<unknown, unknown>,
    fromRequest: shape.fromRequest ?? same,
    toRequest: (written) => shape.request.fromPartial(toRequest(written)),
    fromResponse: shape.fromResponse ?? same,
    toResponse: (written) => shape.response.fromPartial(toResponse(written)),
  };
}

/** Every rpc of the ResourceLease service, keyed by rpc name. */
export const resourceLeaseRpcs: Readonly<Record<ResourceLeaseRpcName, ResourceLeaseRpc>> = {
  enqueue: rpc("enqueue", { verb: "enqueue", request: G.EnqueueRequest, response: G.EnqueueResponse }),
  enqueueBatch: rpc("enqueueBatch", {
    verb: "enqueue",
    request: G.EnqueueBatchRequest,
    response: G.EnqueueBatchResponse,
  }),
  lease: rpc("lease", {
    verb: "lease",
    request: G.LeaseRequest,
    response: G.LeaseResponse,
    // JSON answers the grant's fields at the top level (or `{}`); the protobuf nests them under `grant`.
    fromResponse: (m) => (m.grant as Fields | undefined) ?? {},
    toResponse: (w) => (Object.keys(w).length === 0 ? {} : { grant: w }),
  }),
  leaseBatch: rpc("leaseBatch", { verb: "lease", request: G.LeaseBatchRequest, response: G.LeaseBatchResponse }),
  heartbeat: rpc("heartbeat", { verb: "heartbeat", request: G.HeartbeatRequest, response: G.HeartbeatResponse }),
  complete: rpc("complete", { verb: "complete", request: G.CompleteRequest, response: G.CompleteResponse }),
  completeBatch: rpc("completeBatch", {
    verb: "complete",
    request: G.CompleteBatchRequest,
    response: G.CompleteBatchResponse,
  }),
  fail: rpc("fail", { verb: "fail", request: G.FailRequest, response: G.FailResponse }),
  drain: rpc("drain", { verb: "drain", request: G.DrainRequest, response: G.DrainResponse }),
  restore: rpc("restore", {
    verb: "restore",
    request: G.RestoreRequest,
    response: G.RestoreResponse,
    // The answer lists new ids only for a renumbered restore; a protobuf list has no presence.
    fromResponse: (m) => ((m.sequenceIds as unknown[] | undefined)?.length ? m : { restoredCount: m.restoredCount }),
  }),
  deadLetters: rpc("deadLetters", {
    verb: "deadletters",
    request: G.DeadLettersRequest,
    response: G.DeadLettersResponse,
  }),
  redrive: rpc("redrive", {
    verb: "redrive",
    request: G.RedriveRequest,
    response: G.RedriveResponse,
    // A list with presence: absent (every dead letter) and empty (none) mean different things.
    fromRequest: (m) => {
      const list = m.sequenceIds as { values?: number[] } | undefined;
      return list ? { sequenceIds: list.values ?? [] } : {};
    },
    toRequest: (w) => (w.sequenceIds ? { sequenceIds: { values: w.sequenceIds } } : {}),
  }),
  stats: rpc("stats", { verb: "stats", request: G.StatsRequest, response: G.StatsResponse }),
  cancel: rpc("cancel", { verb: "cancel", request: G.CancelRequest, response: G.CancelResponse }),
  scheduleSet: rpc("scheduleSet", {
    verb: "schedule.set",
    request: G.ScheduleSetRequest,
    response: G.ScheduleSetResponse,
  }),
  scheduleRemove: rpc("scheduleRemove", {
    verb: "schedule.remove",
    request: G.ScheduleRemoveRequest,
    response: G.ScheduleRemoveResponse,
  }),
  scheduleList: rpc("scheduleList", {
    verb: "schedule.list",
    request: G.ScheduleListRequest,
    response: G.ScheduleListResponse,
  }),
  history: rpc("history", { verb: "history", request: G.HistoryRequest, response: G.HistoryResponse }),
};

/**
 * The rpc that carries a procedure's request: by verb and, for verbs with a batch form, by the request (an enqueue
 * or complete `batch`, a lease with `maxItems`). `undefined` for a verb the service does not have.
 */
export function selectResourceLeaseRpc(
  definition: ProcedureDefinition,
  message: unknown,
): ResourceLeaseRpc | undefined {
  const rpcs = resourceLeaseRpcs;
  const m = (message ?? {}) as { batch?: boolean; maxItems?: number };
  switch (definition.verb) {
    case "enqueue":
      return m.batch ? rpcs.enqueueBatch : rpcs.enqueue;
    case "lease":
      return m.maxItems !== undefined ? rpcs.leaseBatch : rpcs.lease;
    case "complete":
      return m.batch ? rpcs.completeBatch : rpcs.complete;
    default:
      return Object.values(rpcs).find((r) => r.verb === definition.verb);
  }
}

/** Whether a definition is one of core's resourcelease procedures (custom JSON procedures have no rpc). */
export function isResourceLeaseDefinition(definition: ProcedureDefinition): boolean {
  return definition.family === "resourcelease" && definition.verb in ResourceLeaseProcedures;
}
