import type { ResourceLeaseGrant } from "../contracts/payload.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";
import type { TimerHandle } from "../util/clock.js";

/** A lease call waiting for an item (`waitMs > 0`). */
export interface LeaseWaiter {
  readonly peerId: string | undefined;
  readonly principal: string | undefined;
  readonly maxItems: number;
  readonly resolve: (grants: ResourceLeaseGrant[]) => void;
  readonly reject: (error: OmniRelayError) => void;
  timer: TimerHandle | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Told how many grants were chosen for it, before they are committed (see `CheckedLease.onGranted`). */
  readonly onGranted: ((count: number) => void) | undefined;
}

/** A waiter's result, delivered after the commit of its LeaseGranted events. */
export interface PendingDelivery {
  readonly waiter: LeaseWaiter;
  readonly grants: ResourceLeaseGrant[];
}
