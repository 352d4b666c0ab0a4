/**
 * `@omnirelay/core/wire` — the wire layer: every message that crosses a boundary (a request, an answer, a stored event, a drain file) described
 * once, with the one family of value readers that checks it. Read with a site's mode: `request` (a caller's input:
 * limits apply), `response` (a server's answer or a file: structure only) or `log` (a stored event: structure only,
 * one error code).
 * @packageDocumentation
 */
import type { ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { required as requiredMessage } from "./message.js";
import { PendingItem } from "./messages.js";
import { responseSite } from "./site.js";

export { eventTypeFromNumber } from "../contracts/events.js";
export { decodeJsonBody, encodeJsonBody } from "../dispatcher/json-codec.js";
export { type OmniRelayStatusInfo, parseStatus, statusInfo, statusTable } from "../errors/status.js";
export type { ResourceLeaseHistoryTarget } from "../queue/history.js";
export type { ResourceLeaseKeyStats, ResourceLeaseKeyStatsOptions } from "../queue/key-stats.js";
export type { ResourceLeaseHistoryOptions } from "../queue/options.js";
export { getPropertyIgnoreCase } from "./case-insensitive.js";
export { canonicalEventBytes, EVENT_HASH_BYTES, hashReplicationEvent } from "./chain.js";
export { type EventChainDivergence, type EventChainStart, EventChainVerifier } from "./chain-verify.js";
export {
  decodeReplicationEvent,
  encodeReplicationEvent,
  ReplicationEvent,
  replicationEventJsonSchema,
} from "./event.js";
export {
  HistoryEntryMessage,
  type HistoryRequest,
  HistoryRequestMessage,
  type HistoryResponse,
  HistoryResponseMessage,
  type ResourceLeaseHistoryEntry,
  type ResourceLeaseItemHistory,
} from "./history.js";
export { payloadBytes, ResourceLeaseLimits } from "./limits.js";
export {
  type Field,
  f,
  type JsonSchema,
  message,
  orElse,
  required,
  type WireForm,
  type WireMessage,
} from "./message.js";
export {
  DeadLetterItem,
  ErrorInfo,
  Grant,
  OwnershipToken,
  Payload,
  PendingItem,
  QueueStats,
  type RestoreItem,
  RestoreItemMessage,
} from "./messages.js";
export {
  type IntegerOptionRules,
  integerOption,
  type NumberOptionRules,
  numberOption,
  type TextOptionRules,
  textOption,
} from "./options.js";
export {
  decodeSchedule,
  encodeSchedule,
  type ResourceLeaseSchedule,
  type ResourceLeaseScheduleBackfill,
  type ResourceLeaseScheduleInfo,
  ScheduleInfoMessage,
  ScheduleMessage,
} from "./schedule.js";
export { writeShortText } from "./short-text.js";
export { logSite, requestSite, responseSite, type Site, type WireMode } from "./site.js";
export { encodeTime, parseTime } from "./time.js";

/** JSON form of a pending item (drain output, restore input, a drain file): times ISO-8601, the body base64. */
export type ResourceLeasePendingItemJson = Record<string, unknown>;

/** Encodes a pending item as its wire JSON: camelCase, times ISO-8601, body base64, absent fields omitted. */
export function encodePendingItem(item: ResourceLeasePendingItem): ResourceLeasePendingItemJson {
  return PendingItem.write(item);
}

/** Options of {@link decodePendingItem}. */
export interface DecodePendingItemOptions {
  /** Field path used in error metadata, e.g. `items[3]`. @defaultValue `"item"` */
  readonly field?: string;
}

/**
 * Decodes a pending item from wire JSON (already parsed): property names match case-insensitively, integers may be
 * decimal strings, times are ISO-8601 (ms numbers are accepted too). Every field must be present.
 * @throws OmniRelayError invalid-argument with metadata `field`: `resourcelease.payload.*` (payload),
 *   `resourcelease.lease.token_required` (`lastOwnershipToken`), `resourcelease.argument.invalid` (anything else).
 */
export function decodePendingItem(json: unknown, options: DecodePendingItemOptions = {}): ResourceLeasePendingItem {
  return requiredMessage(PendingItem, ErrorCodes.resourceLease.restorePendingItemRequired).read(
    json,
    responseSite(options.field ?? "item"),
  ) as ResourceLeasePendingItem;
}
export type { ResourceLeaseSession } from "../resourcelease/session.js";
export {
  isSessionOutbound,
  type SessionChannel,
  type SessionChannelOptions,
  type SessionOutbound,
} from "../resourcelease/session-channel.js";
export {
  SESSION_MAX_OPS,
  type SessionClientFrame,
  SessionClientFrameMessage,
  type SessionFailOp,
  type SessionResult,
  type SessionServerFrame,
  SessionServerFrameMessage,
  type SessionTokenOp,
  sessionErrorFrame,
} from "../resourcelease/session-messages.js";
export {
  type OpenSessionOptions,
  openResourceLeaseSession,
  SESSION_VERBS,
  type SessionLimits,
  type SessionSink,
} from "../resourcelease/session-open.js";
/** Worker sessions (docs/protocol.md, "Worker sessions"): the frames, and the hooks a transport serves them with. */
export type { HttpInboundSessionOptions } from "../transport/http/inbound-options.js";
