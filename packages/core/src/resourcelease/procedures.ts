import type { ResourceLeaseQueueStats } from "../contracts/payload.js";
import type { ProcedureDefinition } from "../dispatcher/types.js";
import * as H from "../wire/history.js";
import * as M from "./messages.js";
import * as S from "./schedule-messages.js";

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
  "cancel",
  "schedule.set",
  "schedule.remove",
  "schedule.list",
  "history",
] as const;

/** One of {@link ResourceLeaseVerbs}. */
export type ResourceLeaseVerb = (typeof ResourceLeaseVerbs)[number];

const define = <Req, Res>(
  verb: ResourceLeaseVerb,
  request: ProcedureDefinition<Req, Res>["request"],
  response: ProcedureDefinition<Req, Res>["response"],
): ProcedureDefinition<Req, Res> => ({ family: "resourcelease", verb, request, response });

/**
 * The resourcelease procedures: each verb's request and response messages (docs/protocol.md). A component serves
 * them, a client calls them, and each transport encodes them — HTTP as JSON, gRPC as protobuf — from these.
 */
export const ResourceLeaseProcedures = {
  enqueue: define<M.EnqueueRequest, M.EnqueueResponse>("enqueue", M.EnqueueRequestMessage, M.EnqueueResponseMessage),
  lease: define<M.LeaseRequest, M.LeaseResponse>("lease", M.LeaseRequestMessage, M.LeaseResponseMessage),
  heartbeat: define<M.HeartbeatRequest, M.HeartbeatResponse>(
    "heartbeat",
    M.HeartbeatRequestMessage,
    M.HeartbeatResponseMessage,
  ),
  complete: define<M.CompleteRequest, M.CompleteResponse>(
    "complete",
    M.CompleteRequestMessage,
    M.CompleteResponseMessage,
  ),
  fail: define<M.FailRequest, M.FailResponse>("fail", M.FailRequestMessage, M.FailResponseMessage),
  drain: define<M.DrainRequest, M.DrainResponse>("drain", M.DrainRequestMessage, M.DrainResponseMessage),
  restore: define<M.RestoreRequest, M.RestoreResponse>("restore", M.RestoreRequestMessage, M.RestoreResponseMessage),
  deadletters: define<M.DeadLettersRequest, M.DeadLettersResponse>(
    "deadletters",
    M.DeadLettersRequestMessage,
    M.DeadLettersResponseMessage,
  ),
  redrive: define<M.RedriveRequest, M.RedriveResponse>("redrive", M.RedriveRequestMessage, M.RedriveResponseMessage),
  stats: define<Record<string, never>, ResourceLeaseQueueStats>("stats", M.StatsRequestMessage, M.StatsResponseMessage),
  cancel: define<S.CancelRequest, S.CancelResponse>("cancel", S.CancelRequestMessage, S.CancelResponseMessage),
  "schedule.set": define<S.ScheduleSetRequest, S.ScheduleSetResponse>(
    "schedule.set",
    S.ScheduleSetRequestMessage,
    S.ScheduleSetResponseMessage,
  ),
  "schedule.remove": define<S.ScheduleRemoveRequest, S.ScheduleRemoveResponse>(
    "schedule.remove",
    S.ScheduleRemoveRequestMessage,
    S.ScheduleRemoveResponseMessage,
  ),
  "schedule.list": define<S.ScheduleListRequest, S.ScheduleListResponse>(
    "schedule.list",
    S.ScheduleListRequestMessage,
    S.ScheduleListResponseMessage,
  ),
  history: define<H.HistoryRequest, H.HistoryResponse>("history", H.HistoryRequestMessage, H.HistoryResponseMessage),
} as const satisfies Record<ResourceLeaseVerb, { readonly verb: string }>;

/** The request type of a verb. */
export type ResourceLeaseRequest<V extends ResourceLeaseVerb> =
  (typeof ResourceLeaseProcedures)[V] extends ProcedureDefinition<infer Req, unknown> ? Req : never;
