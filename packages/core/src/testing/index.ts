/**
 * Test doubles for packages built on @omnirelay/core: import from `@omnirelay/core/testing`.
 * @packageDocumentation
 */
export { FakeClock } from "./fake-clock.js";
