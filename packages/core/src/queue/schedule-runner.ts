import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { payloadBytes } from "../wire/limits.js";
import type { ResourceLeaseSchedule, ResourceLeaseScheduleInfo } from "../wire/schedule.js";
import type { QueueRuntime } from "./runtime.js";
import {
  checkSchedule,
  dueSlots,
  isScheduleId,
  nextSlot,
  SCHEDULE_MAX_BYTES,
  SCHEDULE_MAX_COUNT,
  ScheduleMeta,
  type ScheduleRecord,
  scheduleEventMeta,
  scheduleInfo,
  slotPayload,
} from "./schedules.js";
import type { ResourceLeaseCallContext } from "./types.js";

// The queue's side of cron schedules: setting and removing them (events), and firing their slots from the queue's one
// timer. Internal.

/** Sets (creates or replaces) a schedule: a ScheduleUpserted event. */
export function setSchedule(
  rt: QueueRuntime,
  schedule: ResourceLeaseSchedule,
  context: ResourceLeaseCallContext,
): ResourceLeaseScheduleInfo {
  const now = rt.clock.now();
  checkSchedule(schedule, now);
  const s = rt.state;
  if (!s.schedules.has(schedule.id) && s.schedules.size >= SCHEDULE_MAX_COUNT) {
    throw new OmniRelayError({
      status: "resource-exhausted",
      code: ErrorCodes.resourceLease.scheduleTooMany,
      message: `A queue holds at most ${SCHEDULE_MAX_COUNT} schedules.`,
      metadata: { limit: String(SCHEDULE_MAX_COUNT) },
    });
  }
  const { requestId: _ignored, ...payload } = schedule.payload;
  let bytes = payloadBytes(payload);
  for (const [id, record] of s.schedules) if (id !== schedule.id) bytes += payloadBytes(record.definition.payload);
  if (bytes > SCHEDULE_MAX_BYTES) {
    throw new OmniRelayError({
      status: "resource-exhausted",
      code: ErrorCodes.resourceLease.scheduleTooMany,
      message: `A queue's schedules hold at most ${SCHEDULE_MAX_BYTES} bytes of payload in all; this one would bring them to ${bytes}.`,
      metadata: { limit: String(SCHEDULE_MAX_BYTES), bytes: String(bytes) },
    });
  }
  rt.tx.emit("ScheduleUpserted", { payload }, { now, context, metadata: scheduleEventMeta(schedule) });
  return scheduleInfo(s.schedules.get(schedule.id)!, now);
}

/** Removes a schedule: a ScheduleRemoved event. @throws OmniRelayError not-found `resourcelease.schedule.not_found`. */
export function removeSchedule(rt: QueueRuntime, id: string, context: ResourceLeaseCallContext): void {
  if (!rt.state.schedules.has(id)) {
    // Checked only here, so a schedule a log holds under any id can still be removed.
    if (!isScheduleId(id)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.scheduleInvalid,
        message: "A schedule id is 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit.",
        metadata: { field: "id" },
      });
    }
    throw new OmniRelayError({
      status: "not-found",
      code: ErrorCodes.resourceLease.scheduleNotFound,
      message: `No schedule '${id}'.`,
      metadata: { scheduleId: id },
    });
  }
  rt.tx.emit("ScheduleRemoved", {}, { now: rt.clock.now(), context, metadata: { [ScheduleMeta.id]: id } });
}

/** Where a page of {@link schedulePage} starts (after the schedule id `after`) and how much it holds. */
export interface SchedulePageLimit {
  readonly after?: string;
  readonly maxItems: number;
  /** Most payload bytes; a page holds at least one schedule. */
  readonly maxBytes: number;
}

/**
 * The schedules after `limit.after`, by id, within `limit`, and the id to list after next (absent on the last page).
 * Only the page's schedules compute their next slot, which in a time zone costs tens of microseconds each.
 */
export function schedulePage(
  rt: QueueRuntime,
  limit: SchedulePageLimit,
): { schedules: ResourceLeaseScheduleInfo[]; next?: string } {
  const now = rt.clock.now();
  const after = limit.after;
  const ids = [...rt.state.schedules.keys()].filter((id) => after === undefined || id > after).sort();
  const schedules: ResourceLeaseScheduleInfo[] = [];
  let bytes = 0;
  for (const id of ids) {
    const record = rt.state.schedules.get(id)!;
    const size = payloadBytes(record.definition.payload);
    if (schedules.length > 0 && (schedules.length >= limit.maxItems || bytes + size > limit.maxBytes)) {
      return { schedules, next: schedules[schedules.length - 1]!.id };
    }
    schedules.push(scheduleInfo(record, now));
    bytes += size;
  }
  return { schedules };
}

/** When the queue's timer must next run for its schedules (undefined: no slot is coming). */
export function nextScheduleAt(rt: QueueRuntime): number | undefined {
  let at = Number.POSITIVE_INFINITY;
  for (const record of rt.state.schedules.values()) {
    record.nextAt ??= nextSlot(record, record.firedThrough) ?? Number.POSITIVE_INFINITY;
    if (record.nextAt < at) at = record.nextAt;
  }
  return at === Number.POSITIVE_INFINITY ? undefined : at;
}

/**
 * Fires the due slots of every schedule whose next slot has come: each an Enqueue with the slot's request id (one the
 * queue already remembers is not enqueued again). A slot that finds the queue full is missed (logged).
 */
export function fireSchedules(rt: QueueRuntime, now: number): void {
  if (rt.state.mode !== "running") return;
  for (const record of rt.state.schedules.values()) {
    record.nextAt ??= nextSlot(record, record.firedThrough) ?? Number.POSITIVE_INFINITY;
    if (record.nextAt > now) continue;
    for (const slot of dueSlots(record, now)) fireSlot(rt, record, { slot, now });
    record.nextAt = nextSlot(record, Math.max(now, record.firedThrough)) ?? Number.POSITIVE_INFINITY;
  }
}

function fireSlot(rt: QueueRuntime, record: ScheduleRecord, at: { slot: number; now: number }): void {
  const { slot, now } = at;
  const s = rt.state;
  const payload = slotPayload(record, slot);
  const id = record.definition.id;
  if (s.requestIds.has(payload.requestId!)) return;
  try {
    rt.ensureRoom(1, payloadBytes(payload));
  } catch (error) {
    rt.logger.warn({ err: error, scheduleId: id, slot }, "A schedule's slot found the queue full; it is missed.");
    return;
  }
  const item = { payload, sequenceId: s.lastSequenceId + 1, attempt: 1, enqueuedAt: now };
  rt.tx.emit("Enqueue", { item }, { now, metadata: { [ScheduleMeta.id]: id, [ScheduleMeta.slot]: String(slot) } });
}
