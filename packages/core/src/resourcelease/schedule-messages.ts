import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { f, message, orElse, required } from "../wire/message.js";
import {
  type ResourceLeaseSchedule,
  type ResourceLeaseScheduleInfo,
  ScheduleInfoMessage,
  ScheduleMessage,
} from "../wire/schedule.js";

// The messages of `cancel` and the `schedule.*` verbs (docs/protocol.md), described once for both transports.

/** `cancel`: exactly one of `sequenceId` and `requestId`. */
export interface CancelRequest {
  readonly sequenceId?: number;
  readonly requestId?: string;
}

/** `cancel`'s answer: the item and where it was when cancelled. */
export interface CancelResponse {
  readonly sequenceId: number;
  readonly state: "pending" | "delayed" | "active";
}

/** `schedule.set`. */
export interface ScheduleSetRequest {
  readonly schedule: ResourceLeaseSchedule;
}

/** `schedule.set`'s answer: the schedule as stored, with its next slot. */
export interface ScheduleSetResponse {
  readonly schedule: ResourceLeaseScheduleInfo;
}

/** `schedule.remove`. */
export interface ScheduleRemoveRequest {
  readonly id: string;
}

/** `schedule.remove`'s answer. */
export interface ScheduleRemoveResponse {
  readonly removed: boolean;
}

/** `schedule.list`: a page of the schedules, by id. */
export interface ScheduleListRequest {
  /** List the schedules whose ids sort after this one (the `next` of the page before). */
  readonly after?: string;
  /** Most schedules in the answer (1–10,000). @defaultValue 1000 */
  readonly limit?: number;
}

/** `schedule.list`'s answer: at most `limit` schedules and 2 MiB of payload (at least one schedule). */
export interface ScheduleListResponse {
  readonly schedules: readonly ResourceLeaseScheduleInfo[];
  /** Present when more schedules follow: pass it as the next request's `after`. */
  readonly next?: string;
}

/** `cancel`. */
export const CancelRequestMessage = message<CancelRequest>({
  // An item's id, which the queue's own counter may have taken above `maxSequenceId`.
  sequenceId: f.int({ min: 1 }),
  requestId: f.text({
    max: Limits.requestIdLength,
    code: ErrorCodes.resourceLease.argumentInvalid,
    emptyIsAbsent: true,
  }),
});

/** `cancel`'s answer. */
export const CancelResponseMessage = message<CancelResponse>({
  sequenceId: f.int({ min: 1, required: ErrorCodes.resourceLease.argumentInvalid }),
  state: f.oneOf(["pending", "delayed", "active"] as const, { required: ErrorCodes.resourceLease.argumentInvalid }),
});

/** `schedule.set`. */
export const ScheduleSetRequestMessage = message<ScheduleSetRequest>({
  schedule: required(ScheduleMessage, ErrorCodes.resourceLease.scheduleInvalid),
});

/** `schedule.set`'s answer. */
export const ScheduleSetResponseMessage = message<ScheduleSetResponse>({
  schedule: required(ScheduleInfoMessage, ErrorCodes.resourceLease.argumentInvalid),
});

/** `schedule.remove`. */
export const ScheduleRemoveRequestMessage = message<ScheduleRemoveRequest>({
  id: f.text({
    max: 128,
    required: ErrorCodes.resourceLease.scheduleInvalid,
    code: ErrorCodes.resourceLease.scheduleInvalid,
  }),
});

/** `schedule.remove`'s answer. */
export const ScheduleRemoveResponseMessage = message<ScheduleRemoveResponse>({ removed: orElse(f.bool(), false) });

/** `schedule.list`. */
export const ScheduleListRequestMessage = message<ScheduleListRequest>({
  after: f.text({ max: 128, code: ErrorCodes.resourceLease.scheduleInvalid, emptyIsAbsent: true }),
  limit: f.int({ min: 1, max: 10_000 }),
});

/** `schedule.list`'s answer. */
export const ScheduleListResponseMessage = message<ScheduleListResponse>({
  schedules: orElse(f.list(ScheduleInfoMessage.field), []),
  next: f.text({ max: 128, emptyIsAbsent: true }),
});
