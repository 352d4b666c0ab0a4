/**
 * `@omnirelay/store-redis`: a `DeterministicStateStore` on Redis (ioredis) that several dispatcher nodes share, so
 * deterministic capture records each replication event once across a failover.
 * @packageDocumentation
 */
export { RedisDeterministicStateStore, type RedisDeterministicStateStoreOptions } from "./store.js";
