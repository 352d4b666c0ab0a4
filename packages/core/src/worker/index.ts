/** The ResourceLease worker: leases items, renews and fences leases, completes or fails them. */
export type {
  ResourceLeaseWorkerEvent,
  ResourceLeaseWorkerEventsOptions,
  ResourceLeaseWorkerOperation,
} from "./events.js";
export type {
  ResourceLeaseWorkerCallOptions,
  ResourceLeaseWorkerClient,
  ResourceLeaseWorkerCloseOptions,
  ResourceLeaseWorkerContext,
  ResourceLeaseWorkerFailDecision,
  ResourceLeaseWorkerHandler,
  ResourceLeaseWorkerOptions,
  ResourceLeaseWorkerRetryOptions,
  ResourceLeaseWorkerStats,
} from "./options.js";
export { ResourceLeaseWorker } from "./worker.js";
