import { ErrorCodes } from "../errors/codes.js";
import { f, message, orElse, required } from "./message.js";
import { Payload, type ResourceLeaseItemPayload } from "./messages.js";
import { logSite } from "./site.js";

/** What a schedule does with slots it missed (the queue was stopped, draining or full at the slot's time). */
export type ResourceLeaseScheduleBackfill = "skip" | "latest" | "all";

/**
 * A cron schedule: every slot of `cron` (in `timezone`) enqueues `payload` once, with the request id
 * `schedule:<id>:<slot time, ISO-8601 UTC>`. Schedules live in the queue's log and move with its shard.
 */
export interface ResourceLeaseSchedule {
  /** 1–128 characters of `A–Z a–z 0–9 . _ -`, starting with a letter or digit. */
  readonly id: string;
  /** A cron expression of 5 fields (minutes) or 6 (seconds first), or a nickname such as `@hourly` (croner). */
  readonly cron: string;
  /** IANA time zone the expression is read in. @defaultValue `"UTC"` */
  readonly timezone: string;
  /** The item each slot enqueues; its `requestId` is replaced by the slot's. */
  readonly payload: ResourceLeaseItemPayload;
  /**
   * Missed slots: `skip` fires none (only a slot less than a minute late counts as on time), `latest` fires the
   * most recent one, `all` fires each (at most 1000, the most recent), oldest first; `latest` and `all` only within
   * `backfillWindowMs`. @defaultValue `"skip"`
   */
  readonly backfill: ResourceLeaseScheduleBackfill;
  /** How far back `latest` and `all` reach, ms (1 s – 7 days). @defaultValue 86 400 000 (a day) */
  readonly backfillWindowMs: number;
}

/** A schedule as `schedule.list` answers it. */
export interface ResourceLeaseScheduleInfo extends ResourceLeaseSchedule {
  /** When the schedule was last set; slots at or before it never fire. */
  readonly upsertedAt: number;
  /** The latest slot that fired (absent until one has). */
  readonly lastSlotAt?: number;
  /** The next slot after now (absent when the expression has none left). */
  readonly nextSlotAt?: number;
}

/** Longest `backfillWindowMs`. */
export const SCHEDULE_MAX_WINDOW_MS = 7 * 24 * 3_600_000;

const invalid = ErrorCodes.resourceLease.scheduleInvalid;

const scheduleFields = {
  id: f.text({ max: 128, required: invalid, code: invalid, doc: "Schedule id: A-Z a-z 0-9 . _ -, 1-128." }),
  cron: f.text({
    max: 256,
    required: ErrorCodes.resourceLease.scheduleCronInvalid,
    code: ErrorCodes.resourceLease.scheduleCronInvalid,
  }),
  timezone: orElse(f.text({ max: 64, code: invalid, doc: "IANA time zone; default UTC." }), "UTC"),
  payload: required(Payload, ErrorCodes.resourceLease.payloadRequired),
  backfill: orElse(f.oneOf(["skip", "latest", "all"] as const, { code: invalid }), "skip"),
  backfillWindowMs: orElse(f.int({ min: 1000, max: SCHEDULE_MAX_WINDOW_MS, code: invalid }), 86_400_000),
};

/** A schedule definition (request of `schedule.set`; stored in snapshots). */
export const ScheduleMessage = message<ResourceLeaseSchedule>(scheduleFields, {
  required: invalid,
  code: invalid,
  name: "schedule",
});

/** A schedule with its times (`schedule.list`). */
export const ScheduleInfoMessage = message<ResourceLeaseScheduleInfo>(
  {
    ...scheduleFields,
    upsertedAt: f.time({ required: ErrorCodes.resourceLease.argumentInvalid }),
    lastSlotAt: f.time(),
    nextSlotAt: f.time(),
  },
  { name: "scheduleInfo" },
);

/** Encodes a schedule as its wire JSON (as a log or snapshot stores it). */
export function encodeSchedule(schedule: ResourceLeaseSchedule): Record<string, unknown> {
  return ScheduleMessage.write(schedule, "json");
}

/**
 * Decodes a schedule from its wire JSON (already parsed), in log mode: structure checked, limits not.
 * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid`.
 */
export function decodeSchedule(json: unknown): ResourceLeaseSchedule {
  return ScheduleMessage.read(json, logSite("schedule"))!;
}
