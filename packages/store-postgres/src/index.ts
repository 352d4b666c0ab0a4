/**
 * `@omnirelay/store-postgres`: a `DeterministicStateStore` in a PostgreSQL table that several dispatcher nodes share,
 * so deterministic capture records each replication event once across a failover.
 * @packageDocumentation
 */
export type { PostgresPruneOptions } from "./prune.js";
export { PostgresDeterministicStateStore, type PostgresDeterministicStateStoreOptions } from "./store.js";
