/** The lease queue engine. */

export type { ResourceLeaseKeyOptions, ResourceLeasePriorityAgingOptions } from "./dispatch-options.js";
export type {
  ResourceLeaseDeadLetterRetentionOptions,
  ResourceLeaseQueueBackpressureOptions,
  ResourceLeaseQueueOptions,
  ResourceLeaseRetryBackoffOptions,
} from "./options.js";
export {
  type ResourceLeaseDeadLettersOptions,
  type ResourceLeaseDrainOptions,
  ResourceLeaseQueue,
} from "./queue.js";
export type { ResourceLeaseActiveLeaseSnapshot, ResourceLeaseQueueSnapshot } from "./snapshot.js";
export type {
  ResourceLeaseCallContext,
  ResourceLeaseCompleteResult,
  ResourceLeaseEnqueueResult,
  ResourceLeaseFailOptions,
  ResourceLeaseFailOutcome,
  ResourceLeaseHeartbeatResult,
  ResourceLeaseLeaseOptions,
  ResourceLeaseRebuildOptions,
  ResourceLeaseRestoreOptions,
} from "./types.js";
