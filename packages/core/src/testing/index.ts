/**
 * Test doubles and fixtures for packages built on @omnirelay/core (Node only): import from `@omnirelay/core/testing`.
 * @packageDocumentation
 */
export { FakeClock } from "./fake-clock.js";
export { makeTestPki, type TestKeyPair, type TestPki, type TestPkiOptions } from "./pki.js";
