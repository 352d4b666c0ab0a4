// Builders for the peer tests. Not exported from the package.
import type { ResourceLeaseEventType, ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { Logger } from "../contracts/health.js";
import type {
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import type { Clock } from "../util/clock.js";

/** A payload naming `table/orders`. */
export const testPayload: ResourceLeaseItemPayload = {
  resourceType: "table",
  resourceId: "orders",
  partitionKey: "p1",
  payloadEncoding: "json",
};

/** An ownership token; `fencingToken` defaults to `sequenceId * 100 + attempt`. */
export function token(
  sequenceId: number,
  attempt = 1,
  fencingToken = sequenceId * 100 + attempt,
): ResourceLeaseOwnershipToken {
  return { sequenceId, attempt, leaseId: `lease-${sequenceId}-${attempt}`, fencingToken };
}

/** A pending item with the given sequence id. */
export function pendingItem(sequenceId: number, attempt = 2): ResourceLeasePendingItem {
  return { payload: testPayload, sequenceId, attempt, enqueuedAt: 0 };
}

/** Makes replication events stamped with `clock.now()` and increasing sequence numbers. */
export function eventFactory(clock: Clock) {
  let sequenceNumber = 0;
  return (
    eventType: ResourceLeaseEventType,
    fields: Partial<Omit<ResourceLeaseReplicationEvent, "eventType" | "sequenceNumber">> = {},
  ): ResourceLeaseReplicationEvent => ({
    sequenceNumber: ++sequenceNumber,
    eventType,
    timestamp: clock.now(),
    metadata: {},
    ...fields,
  });
}

/** A logger that keeps what it was given. */
export function recordingLogger(): Logger & { readonly warnings: unknown[] } {
  const warnings: unknown[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn(obj) {
      warnings.push(obj);
    },
    error() {},
  };
}
