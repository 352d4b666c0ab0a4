/**
 * Azure Blob Storage object store: `@omnirelay/replicator-object-storage/azure`. Needs the optional peer dependency
 * `@azure/storage-blob`.
 * @packageDocumentation
 */
export type { AzureBlobResourceLeaseObjectStoreOptions } from "./azure-store.js";
export { AzureBlobResourceLeaseObjectStore } from "./azure-store.js";
