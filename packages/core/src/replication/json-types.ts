import type { ResourceLeaseEventType } from "../contracts/events.js";

/** JSON form of a `ResourceLeaseItemPayload`: the body is base64. */
export interface ResourceLeaseItemPayloadJson {
  readonly resourceType: string;
  readonly resourceId: string;
  readonly partitionKey: string;
  readonly payloadEncoding: string;
  /** Body bytes, base64. */
  readonly body?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly requestId?: string;
}

/** JSON form of a `ResourceLeaseOwnershipToken` (the same fields). */
export interface ResourceLeaseOwnershipTokenJson {
  readonly sequenceId: number;
  readonly attempt: number;
  readonly leaseId: string;
  readonly fencingToken: number;
}

/** JSON form of a `ResourceLeaseErrorInfo`. */
export interface ResourceLeaseErrorInfoJson {
  readonly message: string;
  readonly code?: string;
}

/** JSON form of a `ResourceLeasePendingItem` (drain output, restore input): times are ISO-8601 strings. */
export interface ResourceLeasePendingItemJson {
  readonly payload: ResourceLeaseItemPayloadJson;
  readonly sequenceId: number;
  readonly attempt: number;
  /** ISO-8601. */
  readonly enqueuedAt: string;
  readonly lastError?: ResourceLeaseErrorInfoJson;
  readonly lastOwnershipToken?: ResourceLeaseOwnershipTokenJson;
  /** ISO-8601. */
  readonly availableAt?: string;
}

/**
 * JSON envelope of a `ResourceLeaseReplicationEvent`, the form every durable sink stores: camelCase, timestamps
 * as ISO-8601 strings, bytes as base64, `eventType` as its name, absent fields omitted.
 */
export interface ResourceLeaseReplicationEventJson {
  readonly sequenceNumber: number;
  readonly eventType: ResourceLeaseEventType;
  /** ISO-8601. */
  readonly timestamp: string;
  readonly ownership?: ResourceLeaseOwnershipTokenJson;
  readonly peerId?: string;
  readonly principal?: string;
  readonly payload?: ResourceLeaseItemPayloadJson;
  readonly error?: ResourceLeaseErrorInfoJson;
  readonly item?: ResourceLeasePendingItemJson;
  readonly items?: readonly ResourceLeasePendingItemJson[];
  /** ISO-8601. */
  readonly leaseExpiresAt?: string;
  readonly metadata: Readonly<Record<string, string>>;
}
