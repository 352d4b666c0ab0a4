/**
 * Google Cloud Storage object store: `@omnirelay/replicator-object-storage/gcs`. Needs the optional peer dependency
 * `@google-cloud/storage`.
 * @packageDocumentation
 */
export type { GcsResourceLeaseObjectStoreOptions } from "./gcs-store.js";
export { GcsResourceLeaseObjectStore } from "./gcs-store.js";
