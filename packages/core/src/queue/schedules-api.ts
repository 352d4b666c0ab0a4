import { ErrorCodes } from "../errors/codes.js";
import { type ResourceLeaseSchedule, type ResourceLeaseScheduleInfo, ScheduleMessage } from "../wire/schedule.js";
import { requestSite } from "../wire/site.js";
import * as v from "../wire/values.js";
import type { QueueEngine } from "./engine.js";
import type { ResourceLeaseCallContext } from "./types.js";

/** A schedule as {@link ResourceLeaseSchedules.set} takes it: `timezone`, `backfill` and the window may be left out. */
export type ResourceLeaseScheduleInput = Pick<ResourceLeaseSchedule, "id" | "cron" | "payload"> &
  Partial<Pick<ResourceLeaseSchedule, "timezone" | "backfill" | "backfillWindowMs">>;

/**
 * A queue's cron schedules (`queue.schedules`). Each slot of a schedule enqueues its payload once, with the request id
 * `schedule:<id>:<slot, ISO-8601 UTC>`; a schedule and the slots it fired are events of the queue's log, so a restart,
 * a rebuild or a new owner of the shard never fires a slot twice. See docs/queue-semantics.md.
 */
export class ResourceLeaseSchedules {
  /** @internal */
  constructor(private readonly engine: QueueEngine) {}

  /**
   * Creates or replaces a schedule. Slots at or before now never fire; the next one does.
   * @throws OmniRelayError invalid-argument `resourcelease.schedule.invalid`, `.cron_invalid`, `.timezone_invalid`,
   * `.never_fires`, `.too_frequent`, `resourcelease.payload.*`; resource-exhausted `resourcelease.schedule.too_many`.
   */
  async set(
    schedule: ResourceLeaseScheduleInput,
    context: ResourceLeaseCallContext = {},
  ): Promise<ResourceLeaseScheduleInfo> {
    const checked = ScheduleMessage.read(schedule, requestSite("schedule", this.engine.settings.maxBodyBytes))!;
    return this.engine.setSchedule(checked, context);
  }

  /**
   * Removes a schedule (items it already enqueued stay).
   * @throws OmniRelayError not-found `resourcelease.schedule.not_found`; invalid-argument
   * `resourcelease.schedule.invalid` for an id no schedule may have.
   */
  async remove(id: string, context: ResourceLeaseCallContext = {}): Promise<void> {
    const invalid = ErrorCodes.resourceLease.scheduleInvalid;
    const checked = v.text(id, requestSite("id"), { max: 128, required: invalid, code: invalid })!;
    await this.engine.removeSchedule(checked, context);
  }

  /** Every schedule, by id, with its last and next slot. */
  list(): ResourceLeaseScheduleInfo[] {
    const all = { maxItems: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };
    return this.engine.schedulePage(all).schedules;
  }
}
