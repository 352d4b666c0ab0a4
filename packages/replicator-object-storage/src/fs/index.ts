/**
 * Filesystem object store and deterministic state store: `@omnirelay/replicator-object-storage/fs`.
 * @packageDocumentation
 */
export type { FileSystemResourceLeaseObjectStoreOptions } from "./object-store.js";
export { FileSystemResourceLeaseObjectStore } from "./object-store.js";
export type { FileSystemDeterministicStateStoreOptions } from "./state-store.js";
export { FileSystemDeterministicStateStore } from "./state-store.js";
