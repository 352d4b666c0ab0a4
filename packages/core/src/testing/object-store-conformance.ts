import { AssertionError, strictEqual } from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { ResourceLeaseObjectStore } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import {
  assertOmniError,
  assertSame,
  type ConformanceFixture,
  type ConformanceTestApi,
  checkTestApi,
  collect,
  inScope,
  patternBytes,
  rejectionOf,
} from "./conformance-support.js";
import { bytes, type ObjectStoreCheck, registerListingChecks } from "./object-store-listing-checks.js";

/** An open object store made by an {@link ObjectStoreConformanceFactory}. */
export interface ObjectStoreConformanceFixture extends ConformanceFixture {
  /** The store under test. */
  readonly store: ResourceLeaseObjectStore;
}

/**
 * Makes the stores the suite checks. Every check writes under its own random key prefix, so `create()` may hand out
 * clients of one shared bucket, container or folder (started once in your `beforeAll`).
 */
export interface ObjectStoreConformanceFactory<
  F extends ObjectStoreConformanceFixture = ObjectStoreConformanceFixture,
> {
  /** Opens a store. Called at the start of every check. */
  create(): Promise<F>;
  /**
   * Opens a second client on the storage of `open`, used at the same time (as another process would): what one
   * writes the other reads, and create-if-absent holds between them. Leave it out when there is only one instance
   * (an in-memory store); the cross-client steps are then skipped.
   */
  openAnother?(open: F): Promise<F>;
  /**
   * Reads the content type stored with `key` (S3 `HeadObject`, GCS metadata, Azure blob properties). Leave it out
   * for a store that keeps none (a filesystem): the content-type check is then not registered.
   */
  contentTypeOf?(fixture: F, key: string): Promise<string | undefined>;
}

/** Options of {@link describeObjectStoreConformance}. */
export interface ObjectStoreConformanceOptions {
  /** The test framework's `describe` and `it`, e.g. `{ describe, it }` imported from `vitest`. */
  readonly test: ConformanceTestApi;
  /**
   * The `code` a refused create-if-absent put must carry besides its status `already-exists`, when callers match on
   * it (the object-storage replicator recognises `resourcelease.objectstorage.exists`). @defaultValue undefined (only
   * the status is checked)
   */
  readonly existsCode?: string;
  /** Size of the large object. @defaultValue 1048577 (1 MiB + 1) */
  readonly largeObjectBytes?: number;
}

/**
 * Registers the object-store conformance suite: the behaviour every `ResourceLeaseObjectStore` (S3, GCS, Azure Blob,
 * a filesystem, an in-memory double) must have for the object-storage replicator to work on it.
 *
 * Checked: a missing key reads as `undefined` (also one below or above an existing key); bytes round-trip exactly
 * (every byte value, empty, large); stored bytes are the store's own copy; the content type is kept (with
 * `factory.contentTypeOf`); a plain put replaces; `ifNoneMatch: '*'` creates only when absent and otherwise fails with
 * `already-exists`, changing nothing, also for concurrent callers and across clients (exactly one wins); `list`
 * returns every key with the prefix once, in UTF-8 byte order, strictly after `startAfter`, so paging with the last
 * key seen visits every key once; a reported `size` is the byte length; keys with `/`, spaces, punctuation and Unicode
 * round-trip; calls with an aborted signal fail with `cancelled` and store nothing, and a signal that aborts while a
 * call runs either lets it complete or fails it with `cancelled` (never as if the store were down).
 *
 * Keys in this suite are ASCII or Unicode inside the Basic Multilingual Plane where it lists them together, so UTF-8
 * byte order and UTF-16 order (JavaScript's `<`) agree; a store may sort either way.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * import { describeObjectStoreConformance } from "@omnirelay/core/testing";
 *
 * describeObjectStoreConformance(
 *   "filesystem",
 *   { create: async () => ({ store: new FileSystemResourceLeaseObjectStore({ rootDirectory: root }), close: async () => {} }) },
 *   { test: { describe, it }, existsCode: ErrorCodes.objectStorage.exists },
 * );
 * ```
 */
export function describeObjectStoreConformance<F extends ObjectStoreConformanceFixture>(
  name: string,
  factory: ObjectStoreConformanceFactory<F>,
  options: ObjectStoreConformanceOptions,
): void {
  const test = checkTestApi(options?.test, "describeObjectStoreConformance");
  const existsCode = options.existsCode;
  const largeBytes = options.largeObjectBytes ?? 1024 * 1024 + 1;
  const openAnother = factory.openAnother?.bind(factory);
  const contentTypeOf = factory.contentTypeOf?.bind(factory);
  const check: ObjectStoreCheck = (title, body) =>
    test.it(title, () =>
      inScope<F>(async (scope) => {
        const first = scope.add(await factory.create());
        await body({
          store: first.store,
          prefix: `conformance/${randomUUID()}/`,
          another: openAnother ? async () => scope.add(await openAnother(first)).store : undefined,
          contentTypeOf: contentTypeOf ? (key) => contentTypeOf(first, key) : undefined,
        });
      }),
    );

  const assertExists = (error: unknown, what: string) =>
    assertOmniError(error, { status: "already-exists", code: existsCode }, what);

  test.describe(`object store conformance: ${name}`, () => {
    check(
      "get of a missing key is undefined, also for a key below or above a stored one",
      async ({ store, prefix }) => {
        strictEqual(await store.get(`${prefix}missing.json`), undefined, "get of a key never put");
        await store.put(`${prefix}dir/object.json`, bytes("x"), { contentType: "application/json" });
        strictEqual(await store.get(`${prefix}dir`), undefined, "get of a key that is a folder of a stored key");
        strictEqual(await store.get(`${prefix}dir/object.json/below`), undefined, "get of a key below a stored key");
        strictEqual(await store.get(`${prefix}dir/object`), undefined, "get of a key a stored key starts with");
      },
    );

    check(
      "get returns exactly the bytes put: every byte value, empty, and large",
      async ({ store, prefix, another }) => {
        const objects: [string, Uint8Array][] = [
          [`${prefix}every-byte.bin`, Uint8Array.from({ length: 256 }, (_, i) => i)],
          [`${prefix}empty.bin`, new Uint8Array(0)],
          [`${prefix}large.bin`, patternBytes(largeBytes)],
        ];
        for (const [key, data] of objects) await store.put(key, data, { contentType: "application/octet-stream" });
        const readers = another ? [store, await another()] : [store];
        for (const reader of readers) {
          for (const [key, data] of objects) {
            const got = await reader.get(key);
            if (!(got instanceof Uint8Array)) {
              throw new AssertionError({ message: `get(${key}) returned ${String(got)}, not a Uint8Array` });
            }
            strictEqual(got.byteLength, data.byteLength, `byte length of ${key}`);
            assertSame(got, data, `bytes of ${key}`);
          }
        }
      },
    );

    check(
      "keeps its own copy: the caller reusing its buffer or changing a read copy changes nothing",
      async ({ store, prefix }) => {
        const key = `${prefix}copy.bin`;
        const data = Uint8Array.from([1, 2, 3, 4]);
        await store.put(key, data, { contentType: "application/octet-stream" });
        data.fill(9);
        const read = await store.get(key);
        assertSame(read, Uint8Array.from([1, 2, 3, 4]), "after the caller reused its buffer");
        read?.fill(7);
        assertSame(await store.get(key), Uint8Array.from([1, 2, 3, 4]), "after the caller changed a read copy");
      },
    );

    if (contentTypeOf) {
      check("keeps the content type given to put, and a replacing put's", async ({ store, prefix, contentTypeOf }) => {
        const key = `${prefix}typed.jsonl`;
        await store.put(key, bytes("{}\n"), { contentType: "application/x-ndjson" });
        strictEqual(await contentTypeOf?.(key), "application/x-ndjson", "content type after put");
        await store.put(key, bytes("{}"), { contentType: "application/json" });
        strictEqual(await contentTypeOf?.(key), "application/json", "content type after a replacing put");
      });
    }

    check("a put without ifNoneMatch replaces the object", async ({ store, prefix }) => {
      const key = `${prefix}replaced.json`;
      await store.put(key, bytes("one"), { contentType: "application/json" });
      await store.put(key, bytes("two, longer"), { contentType: "application/json" });
      assertSame(await store.get(key), bytes("two, longer"), "after the second put");
      await store.put(key, bytes("3"), { contentType: "application/json" });
      assertSame(await store.get(key), bytes("3"), "after a shorter third put");
    });

    check(
      "ifNoneMatch '*' creates an absent key and refuses a present one with already-exists, changing nothing",
      async ({ store, prefix }) => {
        const key = `${prefix}once.json`;
        await store.put(key, bytes("first"), { contentType: "application/json", ifNoneMatch: "*" });
        assertSame(await store.get(key), bytes("first"), "after a create-if-absent put");
        const what = "a create-if-absent put of a present key";
        assertExists(
          await rejectionOf(
            store.put(key, bytes("second"), { contentType: "application/json", ifNoneMatch: "*" }),
            what,
          ),
          what,
        );
        assertSame(await store.get(key), bytes("first"), `${what} changes nothing`);
        const plain = `${prefix}plain.json`;
        await store.put(plain, bytes("plain"), { contentType: "application/json" });
        const what2 = "a create-if-absent put of a key made by a plain put";
        assertExists(
          await rejectionOf(store.put(plain, bytes("x"), { contentType: "application/json", ifNoneMatch: "*" }), what2),
          what2,
        );
        assertSame(await store.get(plain), bytes("plain"), `${what2} changes nothing`);
      },
    );

    check(
      "concurrent create-if-absent puts of one key: exactly one wins, the others get already-exists",
      async ({ store, prefix, another }) => {
        const stores = another ? [store, await another()] : [store];
        for (let round = 0; round < 3; round++) {
          const key = `${prefix}race-${round}.json`;
          const contenders = Array.from({ length: 6 }, (_, i) => bytes(`contender-${i}`));
          const results = await Promise.allSettled(
            contenders.map((data, i) =>
              (stores[i % stores.length] as ResourceLeaseObjectStore).put(key, data, {
                contentType: "application/json",
                ifNoneMatch: "*",
              }),
            ),
          );
          const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
          strictEqual(winners.length, 1, `round ${round}: puts that won (${winners.join(", ")})`);
          for (const r of results) if (r.status === "rejected") assertExists(r.reason, `round ${round}: a losing put`);
          for (const reader of stores) {
            assertSame(await reader.get(key), contenders[winners[0] as number], `round ${round}: the stored object`);
          }
        }
      },
    );

    registerListingChecks(check);

    check(
      "a call whose signal aborts while it runs completes or fails with cancelled, never another error",
      async ({ store, prefix }) => {
        await store.put(`${prefix}present.bin`, patternBytes(64 * 1024), { contentType: "application/octet-stream" });
        const calls: [string, (signal: AbortSignal) => Promise<unknown>][] = [
          [
            "put",
            (signal) =>
              store.put(`${prefix}new.bin`, patternBytes(64 * 1024), {
                contentType: "application/octet-stream",
                signal,
              }),
          ],
          [
            "create-if-absent put",
            (signal) =>
              store.put(`${prefix}new-once.bin`, patternBytes(64 * 1024), {
                contentType: "application/octet-stream",
                ifNoneMatch: "*",
                signal,
              }),
          ],
          ["get", (signal) => store.get(`${prefix}present.bin`, { signal })],
          ["list", (signal) => collect(store.list(prefix, undefined, { signal }))],
        ];
        for (const [what, call] of calls) {
          const controller = new AbortController();
          const running = call(controller.signal);
          controller.abort();
          try {
            await running;
          } catch (error) {
            assertOmniError(
              error,
              { status: "cancelled", code: ErrorCodes.resourceLease.cancelled },
              `${what} whose signal aborted while it ran`,
            );
          }
        }
      },
    );

    check("refuses calls whose signal is aborted with cancelled, storing nothing", async ({ store, prefix }) => {
      const signal = AbortSignal.abort();
      const key = `${prefix}cancelled.json`;
      const code = ErrorCodes.resourceLease.cancelled;
      for (const ifNoneMatch of [undefined, "*"] as const) {
        const what = `put with an aborted signal${ifNoneMatch ? " and ifNoneMatch" : ""}`;
        const put = store.put(key, bytes("x"), {
          contentType: "application/json",
          signal,
          ...(ifNoneMatch ? { ifNoneMatch } : {}),
        });
        assertOmniError(await rejectionOf(put, what), { status: "cancelled", code }, what);
      }
      strictEqual(await store.get(key), undefined, "a cancelled put stores nothing");
      await store.put(key, bytes("stored"), { contentType: "application/json" });
      assertOmniError(
        await rejectionOf(store.get(key, { signal }), "get"),
        { status: "cancelled", code },
        "get with an aborted signal",
      );
      const what = "list with an aborted signal";
      assertOmniError(
        await rejectionOf(() => collect(store.list(prefix, undefined, { signal })), what),
        { status: "cancelled", code },
        what,
      );
    });
  });
}
