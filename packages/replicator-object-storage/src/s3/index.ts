/**
 * Amazon S3 (and S3-compatible) object store: `@omnirelay/replicator-object-storage/s3`. Needs the optional peer
 * dependency `@aws-sdk/client-s3`.
 * @packageDocumentation
 */
export type { S3ResourceLeaseObjectStoreOptions } from "./s3-store.js";
export { S3ResourceLeaseObjectStore } from "./s3-store.js";
