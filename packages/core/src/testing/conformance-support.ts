import { AssertionError, deepStrictEqual, strictEqual } from "node:assert/strict";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { isOmniRelayError, type OmniRelayError } from "../errors/omnirelay-error.js";
import type { OmniRelayStatus } from "../errors/status.js";

/**
 * The two functions of a test framework that the conformance suites register their checks with. Pass your
 * framework's own: `{ describe, it }` from `vitest`, `node:test`, jest or mocha all fit. The suites assert with
 * `node:assert`, so they need nothing else from the framework, and `@omnirelay/core` depends on no test framework.
 */
export interface ConformanceTestApi {
  /** Groups checks under a name (`describe` of vitest, node:test, jest, mocha). */
  describe(name: string, body: () => void): unknown;
  /** Registers one asynchronous check (`it` or `test`). A check that throws or rejects fails. */
  it(name: string, body: () => Promise<void>): unknown;
}

/**
 * Checks the `test` option a suite was given, so a missing one fails at registration with a clear message rather
 * than as "undefined is not a function". Internal.
 */
export function checkTestApi(test: ConformanceTestApi | undefined, suite: string): ConformanceTestApi {
  if (typeof test?.describe !== "function" || typeof test.it !== "function") {
    throw new TypeError(`${suite}: options.test must be { describe, it } from your test framework (e.g. vitest).`);
  }
  return test;
}

/** Collects an async iterable. Internal. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

/**
 * A value with every byte array turned into a plain `Uint8Array` and every object into a plain object, so
 * `deepStrictEqual` compares content: a `Buffer` (or a view into a pooled buffer) equals a `Uint8Array` of the same
 * bytes, an object with a null prototype equals a literal. Internal.
 */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) out[key] = plain((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Asserts `actual` deep-equals `expected` after {@link plain}. Internal. */
export function assertSame(actual: unknown, expected: unknown, message: string): void {
  deepStrictEqual(plain(actual), plain(expected), message);
}

/** Awaits `run` and returns what it threw; fails when it resolves. Internal. */
export async function rejectionOf(run: Promise<unknown> | (() => unknown), what: string): Promise<unknown> {
  try {
    await (typeof run === "function" ? run() : run);
  } catch (error) {
    return error;
  }
  throw new AssertionError({ message: `${what}: expected a rejection, but it resolved.` });
}

/** Asserts `error` is an {@link OmniRelayError} with the `expected` status (and code, when given). Internal. */
export function assertOmniError(
  error: unknown,
  expected: OmniRelayStatus | { readonly status: OmniRelayStatus; readonly code?: string },
  what: string,
): OmniRelayError {
  const { status, code } = typeof expected === "string" ? { status: expected, code: undefined } : expected;
  if (!isOmniRelayError(error)) {
    throw new AssertionError({
      message: `${what}: expected an OmniRelayError with status '${status}', got ${describe(error)}.`,
    });
  }
  strictEqual(error.status, status, `${what}: status (code ${error.code}: ${error.message})`);
  if (code !== undefined) strictEqual(error.code, code, `${what}: code`);
  return error;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Races `promise` against `ms` milliseconds: `'pending'` when it neither resolved nor rejected by then. The promise's
 * later rejection is handled. Internal.
 */
export async function settledWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<"resolved" | "rejected" | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => "resolved" as const,
        () => "rejected" as const,
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes `0, 1, …, 255` repeated to `length`, shifted every 256 bytes so a misplaced block shows. Internal. */
export function patternBytes(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i + seed + (i >>> 8) * 7) & 0xff;
  return out;
}

/** Something a conformance factory makes: an open instance that `close()` closes. */
export interface ConformanceFixture {
  /** Closes this instance (not its storage). Called once for every fixture the suite got, also after a failure. */
  close(): Promise<void>;
}

/**
 * The fixtures of one check: every fixture it opens is closed at its end, in reverse order, whatever happens.
 * Internal.
 */
export class FixtureScope<F extends ConformanceFixture> {
  private readonly open: F[] = [];

  /** Registers `fixture` for closing and returns it. */
  add(fixture: F): F {
    this.open.push(fixture);
    return fixture;
  }

  /** Closes `fixture` now (once). */
  async close(fixture: F): Promise<void> {
    const index = this.open.indexOf(fixture);
    if (index < 0) return;
    this.open.splice(index, 1);
    await fixture.close();
  }

  /** Closes every fixture still open, newest first; rethrows the first failure after trying them all. */
  async closeAll(): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (const fixture of this.open.splice(0).reverse()) {
      try {
        await fixture.close();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}

/** Runs `body` with a fresh {@link FixtureScope}, closing what it opened afterwards. Internal. */
export async function inScope<F extends ConformanceFixture>(
  body: (scope: FixtureScope<F>) => Promise<void>,
): Promise<void> {
  const scope = new FixtureScope<F>();
  let failed = true;
  try {
    await body(scope);
    failed = false;
  } finally {
    // A failure of the check itself is what the reader needs; a close failure after it would hide it.
    if (failed) await scope.closeAll().catch(() => undefined);
    else await scope.closeAll();
  }
}

const T0 = Date.UTC(2026, 0, 1);

/** A small event numbered `n`; `tag` goes into `peerId` and the metadata, so two versions of one number differ. */
export function small(n: number, tag = "a"): ResourceLeaseReplicationEvent {
  return { sequenceNumber: n, eventType: "Heartbeat", timestamp: T0 + n, peerId: `peer-${tag}`, metadata: { tag } };
}

/** Small events numbered `from` to `to`. */
export function range(from: number, to: number, tag = "a"): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (let n = from; n <= to; n++) out.push(small(n, tag));
  return out;
}
