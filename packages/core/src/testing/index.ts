/**
 * Test doubles, fixtures and conformance suites for packages built on @omnirelay/core (Node only): import from
 * `@omnirelay/core/testing`. The suites register their checks with the `describe`/`it` you pass in and assert with
 * `node:assert`, so this entry point depends on no test framework.
 * @packageDocumentation
 */
export type { ConformanceFixture, ConformanceTestApi } from "./conformance-support.js";
export {
  type DeterministicStoreConformanceFactory,
  type DeterministicStoreConformanceFixture,
  type DeterministicStoreConformanceOptions,
  describeDeterministicStoreConformance,
} from "./deterministic-store-conformance.js";
export {
  type ConformanceEventLog,
  describeEventLogConformance,
  type EventLogConformanceFactory,
  type EventLogConformanceFixture,
  type EventLogConformanceOptions,
  type EventLogGaps,
} from "./event-log-conformance.js";
export { eventsOfEveryType } from "./events-of-every-type.js";
export { FakeClock } from "./fake-clock.js";
export { InMemoryResourceLeaseObjectStore } from "./in-memory-object-store.js";
export {
  describeObjectStoreConformance,
  type ObjectStoreConformanceFactory,
  type ObjectStoreConformanceFixture,
  type ObjectStoreConformanceOptions,
} from "./object-store-conformance.js";
export { makeTestPki, type TestKeyPair, type TestPki, type TestPkiOptions } from "./pki.js";
