import { Cron } from "croner";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type {
  ResourceLeaseSchedule,
  ResourceLeaseScheduleBackfill,
  ResourceLeaseScheduleInfo,
} from "../wire/schedule.js";
import { hourIsWildcard, lastSlots, nextSlotAt, type SlotRule } from "./schedule-slots.js";

/** Two consecutive slots of a schedule are at least this far apart (checked when a schedule is set). */
export const SCHEDULE_MIN_INTERVAL_MS = 10_000;
/** A slot fired at most this late is on time; an older one is missed, and its schedule's backfill policy decides. */
export const SCHEDULE_ON_TIME_MS = 60_000;
/** Most missed slots one schedule fires at once (`backfill: "all"`): the most recent ones. */
export const SCHEDULE_MAX_BACKFILL = 1000;
/** Most schedules one queue holds. */
export const SCHEDULE_MAX_COUNT = 10_000;
/**
 * Most bytes the payloads of one queue's schedules hold in all (16 MiB): each is held in memory, in every snapshot and
 * in `schedule.list`'s one answer, which at 10,000 schedules of 1 MiB was past what a JSON text can hold.
 */
export const SCHEDULE_MAX_BYTES = 16 * 1024 * 1024;
/** The prefix of a slot's request id (see {@link slotRequestId}): reserved to slots, an enqueue may not use it. */
export const SLOT_REQUEST_ID_PREFIX = "schedule:";

const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Whether `id` is one a schedule may have (1–128 of `A–Z a–z 0–9 . _ -`, starting with a letter or digit). */
export function isScheduleId(id: string): boolean {
  return SCHEDULE_ID.test(id);
}

/** Metadata keys of the schedule events (ScheduleUpserted, ScheduleRemoved, and an Enqueue a slot fired). */
export const ScheduleMeta = {
  id: "schedule.id",
  cron: "schedule.cron",
  timezone: "schedule.timezone",
  backfill: "schedule.backfill",
  window: "schedule.backfill_window_ms",
  slot: "schedule.slot",
} as const;

/** A schedule in the queue's state. `firedThrough`: slots at or before it never fire (the upsert time or a fired slot). */
export interface ScheduleRecord {
  readonly definition: ResourceLeaseSchedule;
  /** The expression over the zone's local wall-clock time (see {@link compileCron}). */
  readonly pattern: Cron;
  readonly upsertedAt: number;
  firedThrough: number;
  lastSlotAt: number | undefined;
  /** Runtime only: the next slot the timer waits for (recomputed from `firedThrough` after a rebuild). */
  nextAt: number | undefined;
}

function invalid(code: string, message: string, metadata: Record<string, string>): OmniRelayError {
  return new OmniRelayError({ status: "invalid-argument", code, message, metadata });
}

/**
 * Parses a cron expression in a zone (5 or 6 fields, or a nickname). The result matches local wall-clock times (written
 * as UTC instants); {@link nextSlot} and {@link dueSlots} turn them into instants in the zone.
 * @throws OmniRelayError the schedule codes.
 */
export function compileCron(cron: string, timezone: string): Cron {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw invalid(ErrorCodes.resourceLease.scheduleTimezoneInvalid, `Unknown time zone '${timezone}'.`, {
      field: "timezone",
      timezone,
    });
  }
  try {
    return new Cron(cron, { paused: true, utcOffset: 0, mode: "5-or-6-parts" });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw invalid(ErrorCodes.resourceLease.scheduleCronInvalid, `Invalid cron expression: ${reason}`, {
      field: "cron",
      cron,
    });
  }
}

/**
 * Checks a schedule set at `now`: its id, expression and zone; that it has a slot left; that its slots are at least
 * {@link SCHEDULE_MIN_INTERVAL_MS} apart. Returns the compiled expression.
 */
export function checkSchedule(schedule: ResourceLeaseSchedule, now: number): Cron {
  if (!isScheduleId(schedule.id)) {
    throw invalid(ErrorCodes.resourceLease.scheduleInvalid, "A schedule id is 1-128 of A-Z a-z 0-9 . _ -.", {
      field: "id",
    });
  }
  if (schedule.payload.delayMs !== undefined) {
    // An enqueue's delayMs is counted from its call; a schedule's items are due at their slots, which the cron gives.
    throw invalid(
      ErrorCodes.resourceLease.scheduleInvalid,
      "A schedule's payload takes no delayMs: its slots say when its items are due (shift the cron expression instead).",
      { field: "payload.delayMs" },
    );
  }
  const pattern = compileCron(schedule.cron, schedule.timezone);
  // Checked over local times (the same whichever daylight-saving change is near); a gap's times fire once after it.
  const runs = pattern.nextRuns(20, new Date(now)).map((d) => d.getTime());
  if (runs.length === 0) {
    throw invalid(ErrorCodes.resourceLease.scheduleNeverFires, "The cron expression has no future slot.", {
      field: "cron",
      cron: schedule.cron,
    });
  }
  for (let i = 1; i < runs.length; i++) {
    if (runs[i]! - runs[i - 1]! < SCHEDULE_MIN_INTERVAL_MS) {
      throw invalid(
        ErrorCodes.resourceLease.scheduleTooFrequent,
        `Slots of a schedule must be at least ${SCHEDULE_MIN_INTERVAL_MS} ms apart.`,
        { field: "cron", cron: schedule.cron, minIntervalMs: String(SCHEDULE_MIN_INTERVAL_MS) },
      );
    }
  }
  return pattern;
}

/** The metadata of a ScheduleUpserted event for `schedule` (its payload travels as the event's `payload`). */
export function scheduleEventMeta(schedule: ResourceLeaseSchedule): Record<string, string> {
  return {
    [ScheduleMeta.id]: schedule.id,
    [ScheduleMeta.cron]: schedule.cron,
    [ScheduleMeta.timezone]: schedule.timezone,
    [ScheduleMeta.backfill]: schedule.backfill,
    [ScheduleMeta.window]: String(schedule.backfillWindowMs),
  };
}

const BACKFILLS: ReadonlySet<string> = new Set<ResourceLeaseScheduleBackfill>(["skip", "latest", "all"]);

/** Reads the schedule a ScheduleUpserted event carries; undefined when it does not carry a well-formed one. */
export function scheduleFromEvent(event: ResourceLeaseReplicationEvent): ScheduleRecord | undefined {
  const m = event.metadata;
  const id = m[ScheduleMeta.id];
  const cron = m[ScheduleMeta.cron];
  const timezone = m[ScheduleMeta.timezone];
  const backfill = m[ScheduleMeta.backfill];
  const window = Number(m[ScheduleMeta.window]);
  if (!id || !cron || !timezone || !backfill || !BACKFILLS.has(backfill) || !event.payload) return undefined;
  if (!Number.isSafeInteger(window) || window <= 0) return undefined;
  let pattern: Cron;
  try {
    pattern = compileCron(cron, timezone);
  } catch {
    return undefined;
  }
  const definition: ResourceLeaseSchedule = {
    id,
    cron,
    timezone,
    payload: event.payload,
    backfill: backfill as ResourceLeaseScheduleBackfill,
    backfillWindowMs: window,
  };
  return {
    definition,
    pattern,
    upsertedAt: event.timestamp,
    firedThrough: event.timestamp,
    lastSlotAt: undefined,
    nextAt: undefined,
  };
}

/** The request id of a schedule's slot: `schedule:<id>:<slot, ISO-8601 UTC>`. */
export function slotRequestId(scheduleId: string, slot: number): string {
  return `${SLOT_REQUEST_ID_PREFIX}${scheduleId}:${new Date(slot).toISOString()}`;
}

/** The item a slot enqueues: the schedule's payload with the slot's request id. */
export function slotPayload(record: ScheduleRecord, slot: number): ResourceLeaseItemPayload {
  // A delayMs that a log written before schedule.set refused it may still hold was never applied: it is not passed on.
  const { delayMs: _neverApplied, ...payload } = record.definition.payload;
  return { ...payload, requestId: slotRequestId(record.definition.id, slot) };
}

function slotRule(record: ScheduleRecord): SlotRule {
  const { cron, timezone } = record.definition;
  return { wall: record.pattern, zone: timezone, realTime: hourIsWildcard(cron) };
}

/**
 * The first slot after `after`, or undefined when there is none. Slots follow the zone's daylight-saving changes: with
 * a wildcard hour field, every instant whose local time matches (a repeated hour fires twice, a skipped one not at
 * all); otherwise each matching local time once, at its first occurrence, or at the first instant after a gap.
 */
export function nextSlot(record: ScheduleRecord, after: number): number | undefined {
  return nextSlotAt(slotRule(record), after);
}

/**
 * The slots a schedule fires at `now`, oldest first: those after `firedThrough` up to `now` that its backfill policy
 * keeps — the latest when it is on time (`skip`) or within the window (`latest`), every one within the window (`all`,
 * at most {@link SCHEDULE_MAX_BACKFILL}, the most recent). The same slots {@link nextSlot} steps through.
 */
export function dueSlots(record: ScheduleRecord, now: number): number[] {
  const { backfill, backfillWindowMs } = record.definition;
  const reach = backfill === "skip" ? SCHEDULE_ON_TIME_MS : backfillWindowMs;
  const after = Math.max(record.firedThrough, now - reach);
  return lastSlots(slotRule(record), { after, now }, backfill === "all" ? SCHEDULE_MAX_BACKFILL : 1);
}

/** A schedule as `schedule.list` answers it. */
export function scheduleInfo(record: ScheduleRecord, now: number): ResourceLeaseScheduleInfo {
  const next = nextSlot(record, Math.max(now, record.firedThrough));
  return {
    ...record.definition,
    upsertedAt: record.upsertedAt,
    ...(record.lastSlotAt !== undefined ? { lastSlotAt: record.lastSlotAt } : {}),
    ...(next !== undefined ? { nextSlotAt: next } : {}),
  };
}
