/** The lease queue engine. */

export type { ResourceLeaseCancelResult } from "./cancel.js";
export type { ResourceLeaseKeyOptions, ResourceLeasePriorityAgingOptions } from "./dispatch-options.js";
export type { ResourceLeaseKeyStats, ResourceLeaseKeyStatsOptions } from "./key-stats.js";
export type {
  ResourceLeaseDeadLetterRetentionOptions,
  ResourceLeaseQueueBackpressureOptions,
  ResourceLeaseQueueOptions,
  ResourceLeaseRetryBackoffOptions,
} from "./options.js";
export type { ResourceLeaseDispatchSnapshot } from "./pending.js";
export { ResourceLeaseQueue } from "./queue.js";
export {
  SCHEDULE_MAX_BACKFILL,
  SCHEDULE_MAX_BYTES,
  SCHEDULE_MAX_COUNT,
  SCHEDULE_MIN_INTERVAL_MS,
  SCHEDULE_ON_TIME_MS,
} from "./schedules.js";
export { type ResourceLeaseScheduleInput, ResourceLeaseSchedules } from "./schedules-api.js";
export type { ResourceLeaseActiveLeaseSnapshot, ResourceLeaseQueueSnapshot } from "./snapshot.js";
export type {
  ResourceLeaseCallContext,
  ResourceLeaseCancelOptions,
  ResourceLeaseCompleteResult,
  ResourceLeaseDeadLettersOptions,
  ResourceLeaseDrainOptions,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOptions,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
  ResourceLeaseLeaseOptions,
  ResourceLeaseRebuildOptions,
  ResourceLeaseRestoreOptions,
} from "./types.js";
