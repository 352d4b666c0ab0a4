// The contracts' message types are declared beside their wire descriptions (src/wire/messages.ts), so a field is
// added in one place; they are re-exported here for the modules that think of them as contracts.
export type {
  ResourceLeaseDeadLetterItem,
  ResourceLeaseErrorInfo,
  ResourceLeaseGrant,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
  ResourceLeaseQueueState,
  ResourceLeaseQueueStats,
} from "../wire/messages.js";
