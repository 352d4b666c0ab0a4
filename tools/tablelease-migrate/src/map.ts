/**
 * The field map from the deprecated `tablelease::*` contracts to `resourcelease::*`, as data. The codemod applies the
 * one-to-one entries; the lint reports everything that has no one-to-one replacement. docs/guides/
 * migrating-from-tablelease.md renders the same map for people.
 */

/** `tablelease::enqueue`, `tablelease.billing::lease`: group 1 is the shard suffix. */
export const OLD_PROCEDURE = /^tablelease((?:\.[A-Za-z0-9_-]+)*)::/;

/** A namespace option of the old component or client: `"tablelease"` or a shard `"tablelease.billing"`. */
export const OLD_NAMESPACE = /^tablelease((?:\.[A-Za-z0-9_-]+)*)$/;

/** Old type names with a direct replacement exported by `@omnirelay/core`; `value` marks classes. */
export const TYPE_RENAMES: Readonly<Record<string, { readonly name: string; readonly value?: boolean }>> = {
  TableLeaseItemPayload: { name: "ResourceLeaseItemPayload" },
  TableLeaseOwnershipHandle: { name: "ResourceLeaseOwnershipToken" },
  TableLeaseErrorInfo: { name: "ResourceLeaseErrorInfo" },
  TableLeasePendingItemDto: { name: "ResourceLeasePendingItem" },
  TableLeaseQueueStats: { name: "ResourceLeaseQueueStats" },
  TableLeaseLeaseResponse: { name: "ResourceLeaseGrant" },
  TableLeaseReplicationEvent: { name: "ResourceLeaseReplicationEvent" },
  TableLeaseReplicationEventType: { name: "ResourceLeaseEventType" },
  ITableLeaseReplicator: { name: "ResourceLeaseReplicator" },
  ITableLeaseReplicationSink: { name: "ResourceLeaseReplicationSink" },
  TableLeaseDispatcherComponent: { name: "ResourceLeaseDispatcherComponent", value: true },
  TableLeaseDispatcherOptions: { name: "ResourceLeaseDispatcherComponentOptions" },
};

/** Old request/response types that have no exported equivalent: the typed client replaces them. */
export const TYPES_WITHOUT_EQUIVALENT: Readonly<Record<string, string>> = {
  TableLeaseEnqueueRequest: "call ResourceLeaseClient.enqueue(payload)",
  TableLeaseEnqueueResponse: "ResourceLeaseClient.enqueue resolves { sequenceId, duplicate, stats }",
  TableLeaseLeaseRequest: "call ResourceLeaseClient.lease({ peerId, waitMs, maxItems })",
  TableLeaseCompleteRequest: "call ResourceLeaseClient.complete(token)",
  TableLeaseHeartbeatRequest: "call ResourceLeaseClient.heartbeat(token)",
  TableLeaseFailRequest: "call ResourceLeaseClient.fail(token, { reason, errorCode, requeue, delayMs })",
  TableLeaseAcknowledgeResponse: "failures are now thrown as OmniRelayError with a code, not { success: false }",
  TableLeaseDrainRequest: "call ResourceLeaseClient.drain() or drainPage({ maxItems })",
  TableLeaseDrainResponse: "ResourceLeaseClient.drain resolves ResourceLeasePendingItem[]",
  TableLeaseRestoreRequest: "call ResourceLeaseClient.restore(items)",
  TableLeaseRestoreResponse: "ResourceLeaseClient.restore resolves the restored count",
  TableLeaseWorkItem: "use ResourceLeaseItemPayload",
};

/** Old error codes with a one-to-one new code. */
export const ERROR_CODE_RENAMES: Readonly<Record<string, string>> = {
  "error.tablelease.payload_missing": "resourcelease.payload.required",
  "error.tablelease.unknown_token": "resourcelease.lease.unknown_token",
  "error.tablelease.failed": "resourcelease.failed",
  "error.taskqueue.lease_inactive": "resourcelease.lease.fenced",
  "error.taskqueue.lease_expired": "resourcelease.lease.expired",
};

/** Old error codes whose meaning split or disappeared: the lint says what to check instead. */
export const ERROR_CODES_WITHOUT_EQUIVALENT: Readonly<Record<string, string>> = {
  "error.tablelease.duplicate_token": "it can no longer happen",
  "error.tablelease.pending": "a restored item keeps the lastError it had, or none",
  "error.taskqueue.disposed":
    "drain is no longer terminal: match resourcelease.draining (during a drain) or resourcelease.queue.closed",
};

/** Fields that only a lease payload has (old or new): an object literal with one of them is a payload builder. */
export const PAYLOAD_MARKERS = ["partitionkey", "payloadencoding", "resourcetype", "resourceid"] as const;

/** The removed identity fields. */
export const REMOVED_FIELDS = ["namespace", "table"] as const;

/** How the codemod maps `namespace` + `table` to the new identity pair. */
export type IdentityMapping = "qualified" | "split";

/** `resourceType` written by the `qualified` mapping. */
export const QUALIFIED_RESOURCE_TYPE = "table";

/** A map entry by key, never an inherited property (`toString`, `constructor`, … are identifiers too). */
export function lookup<T>(map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}
