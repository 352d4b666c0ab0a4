/**
 * `@omnirelay/core/deterministic`: deterministic capture — record each replication event once, keyed by its
 * queue-assigned sequence number, in a `DeterministicStateStore`.
 * @packageDocumentation
 */
export type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
export { checkDeterministicRecord, checkStateStoreKey, checkUtf8StateStoreKey } from "./checks.js";
export type { DeterministicRecordOptions, DeterministicRecordResult } from "./coordinator.js";
export { DeterministicResourceLeaseCoordinator } from "./coordinator.js";
export { InMemoryDeterministicStateStore } from "./in-memory-state-store.js";
export type { ResolvedDeterministicOptions, ResourceLeaseDeterministicOptions } from "./options.js";
export { resolveDeterministicOptions } from "./options.js";
export type { DecodedDeterministicRecord } from "./record-codec.js";
export { decodeDeterministicRecord, encodeDeterministicRecord } from "./record-codec.js";
export { DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND } from "./record-kinds.js";
