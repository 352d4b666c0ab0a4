import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { requestSite } from "../wire/site.js";
import * as v from "../wire/values.js";
import { toPendingItem } from "./records.js";
import type { QueueRuntime } from "./runtime.js";
import type { ResourceLeaseCallContext } from "./types.js";

/** Which item `cancel` acts on: by sequence id, or by the request id it was enqueued with. */
export interface ResourceLeaseCancelTarget {
  readonly sequenceId?: number;
  readonly requestId?: string;
}

/** What `cancel` did: the item's id and where it was (`active`: its lease ended; the holder learns it on its next call). */
export interface ResourceLeaseCancelResult {
  readonly sequenceId: number;
  readonly state: "pending" | "delayed" | "active";
}

/** The error of a `cancel` or `history` that names its item by neither or both of `sequenceId` and `requestId`. */
export const cancelTargetError = (): OmniRelayError =>
  new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.resourceLease.argumentInvalid,
    message: "Name the item by exactly one of sequenceId and requestId.",
    metadata: { field: "sequenceId" },
  });

/**
 * Reads the item a `cancel` or `history` names: exactly one of a sequence id (an integer >= 1) and a request id.
 * @throws OmniRelayError invalid-argument for a bad or missing target.
 */
export function readItemTarget(sequenceId: unknown, requestId: unknown): ResourceLeaseCancelTarget {
  const id = v.integer(sequenceId, requestSite("sequenceId"), { min: 1 });
  const rid = v.text(requestId, requestSite("requestId"), { max: Limits.requestIdLength });
  if ((id === undefined) === (rid === undefined || rid === "")) throw cancelTargetError();
  return id !== undefined ? { sequenceId: id } : { requestId: rid! };
}

/**
 * Cancels a queued or leased item: a Cancelled event. Internal (the queue's and the component's `cancel`).
 * @throws OmniRelayError not-found `resourcelease.item.not_found` when no live item matches.
 */
export function cancelItem(
  rt: QueueRuntime,
  target: ResourceLeaseCancelTarget,
  context: ResourceLeaseCallContext,
): ResourceLeaseCancelResult {
  const s = rt.state;
  const now = rt.clock.now();
  s.pruneRequestIds(now);
  const id =
    target.sequenceId ?? (target.requestId !== undefined ? s.requestIds.get(target.requestId)?.sequenceId : undefined);
  const item = id === undefined ? undefined : s.items.get(id);
  if (!item || (item.state !== "pending" && item.state !== "delayed" && item.state !== "active")) {
    throw new OmniRelayError({
      status: "not-found",
      code: ErrorCodes.resourceLease.itemNotFound,
      message: "No pending, delayed or leased item matches.",
      metadata:
        target.sequenceId !== undefined
          ? { sequenceId: String(target.sequenceId) }
          : { requestId: target.requestId ?? "" },
    });
  }
  const state = item.state;
  const metadata = { "cancel.state": state };
  if (state === "active" && item.lease) {
    const lease = item.lease;
    rt.tx.emit("Cancelled", { ownership: lease.token, payload: lease.payload }, { now, context, lease, metadata });
  } else {
    rt.tx.emit("Cancelled", { item: toPendingItem(item) }, { now, context, metadata });
  }
  return { sequenceId: item.sequenceId, state };
}
