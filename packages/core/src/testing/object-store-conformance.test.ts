import { describe, expect, it } from "vitest";
import type { CallOptions } from "../contracts/events.js";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "../contracts/stores.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { InMemoryResourceLeaseObjectStore } from "./in-memory-object-store.js";
import {
  describeObjectStoreConformance,
  type ObjectStoreConformanceFactory,
  type ObjectStoreConformanceFixture,
} from "./object-store-conformance.js";
import { failingChecks, nextTurn } from "./test-helpers.js";

type Flaw =
  | "ignoresIfNoneMatch"
  | "createIsNotAtomic"
  | "listsInInsertionOrder"
  | "listsFromStartAfterInclusive"
  | "prefixIgnoresTrailingSlash"
  | "missingReadsAsEmpty"
  | "emptyReadsAsMissing"
  | "keepsCallersBuffer"
  | "ignoresSignal"
  | "dropsContentType"
  | "truncatesLargeObjects"
  | "sizeCountsCharacters"
  | "reportsAbortAsOutage";

const EXISTS = "resourcelease.objectstorage.exists";

/** A store written for these tests, correct unless given flaws. */
class FlawedStore implements ResourceLeaseObjectStore {
  readonly objects = new Map<string, { bytes: Uint8Array; contentType: string }>();

  constructor(private readonly flaws: ReadonlySet<Flaw>) {}

  private cancelled(signal: AbortSignal | undefined): void {
    if (signal?.aborted && !this.flaws.has("ignoresSignal")) {
      throw new OmniRelayError({ status: "cancelled", code: "resourcelease.cancelled", message: "x" });
    }
  }

  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const { contentType } = options;
    this.cancelled(options.signal);
    if (this.flaws.has("reportsAbortAsOutage")) {
      // As an SDK does: the request is in flight when the signal aborts, and the abort surfaces as a failed request.
      await nextTurn();
      if (options.signal?.aborted) {
        throw new OmniRelayError({ status: "unavailable", code: "test.store_failed", message: "Request aborted" });
      }
    }
    const conditional = options.ifNoneMatch === "*" && !this.flaws.has("ignoresIfNoneMatch");
    const present = this.objects.has(key);
    if (this.flaws.has("createIsNotAtomic")) await nextTurn();
    if (conditional && present) throw new OmniRelayError({ status: "already-exists", code: EXISTS, message: "x" });
    let copy = this.flaws.has("keepsCallersBuffer") ? bytes : Uint8Array.from(bytes);
    if (this.flaws.has("truncatesLargeObjects")) copy = copy.subarray(0, 65_536);
    const type = this.flaws.has("dropsContentType") ? "application/octet-stream" : contentType;
    this.objects.set(key, { bytes: copy, contentType: type });
  }

  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    this.cancelled(options.signal);
    const found = this.objects.get(key);
    if (found === undefined) return this.flaws.has("missingReadsAsEmpty") ? new Uint8Array(0) : undefined;
    if (found.bytes.byteLength === 0 && this.flaws.has("emptyReadsAsMissing")) return undefined;
    return this.flaws.has("keepsCallersBuffer") ? found.bytes : Uint8Array.from(found.bytes);
  }

  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    this.cancelled(options.signal);
    const match = this.flaws.has("prefixIgnoresTrailingSlash") ? prefix.replace(/\/$/, "") : prefix;
    let keys = [...this.objects.keys()].filter((k) => k.startsWith(match));
    if (!this.flaws.has("listsInInsertionOrder")) keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (startAfter !== undefined) {
      keys = keys.filter((k) => (this.flaws.has("listsFromStartAfterInclusive") ? k >= startAfter : k > startAfter));
    }
    for (const key of keys) {
      const bytes = this.objects.get(key)?.bytes;
      const size = this.flaws.has("sizeCountsCharacters") ? new TextDecoder().decode(bytes).length : bytes?.byteLength;
      yield size === undefined ? { key } : { key, size };
    }
  }
}

interface FlawedFixture extends ObjectStoreConformanceFixture {
  readonly store: FlawedStore;
}

function flawedFactory(flaws: readonly Flaw[]): ObjectStoreConformanceFactory<FlawedFixture> {
  const store = new FlawedStore(new Set(flaws));
  return {
    create: async () => ({ store, close: async () => undefined }),
    openAnother: async (open) => open,
    contentTypeOf: async (fixture, key) => fixture.store.objects.get(key)?.contentType,
  };
}

const test = { describe, it };

describeObjectStoreConformance(
  "InMemoryResourceLeaseObjectStore",
  {
    create: async () => ({ store: new InMemoryResourceLeaseObjectStore(), close: async () => undefined }),
    openAnother: async (open) => open,
    contentTypeOf: async (fixture, key) => fixture.store.contentTypeOf(key),
  },
  { test, existsCode: EXISTS },
);

describeObjectStoreConformance("reference store", flawedFactory([]), { test, existsCode: EXISTS });

const MISSING = "get of a missing key is undefined, also for a key below or above a stored one";
const BYTES = "get returns exactly the bytes put: every byte value, empty, and large";
const COPY = "keeps its own copy: the caller reusing its buffer or changing a read copy changes nothing";
const CONTENT_TYPE = "keeps the content type given to put, and a replacing put's";
const CREATE = "ifNoneMatch '*' creates an absent key and refuses a present one with already-exists, changing nothing";
const RACE = "concurrent create-if-absent puts of one key: exactly one wins, the others get already-exists";
const LIST = "lists every key with the prefix once, in byte order, and nothing else";
const START_AFTER = "lists strictly after startAfter, and paging with the last key seen visits every key once";
const CANCELLED = "refuses calls whose signal is aborted with cancelled, storing nothing";
const ABORTED_WHILE_RUNNING =
  "a call whose signal aborts while it runs completes or fails with cancelled, never another error";

describe("the object store suite", () => {
  it("passes a correct store, and checks the exists code when given", async () => {
    const run = (existsCode: string) =>
      failingChecks((t) => describeObjectStoreConformance("x", flawedFactory([]), { test: t, existsCode }));
    expect(await run(EXISTS)).toEqual([]);
    expect(await run("some.other.code")).toEqual([CREATE, RACE]);
  });

  it.each<[Flaw, string[]]>([
    ["ignoresIfNoneMatch", [CREATE, RACE]],
    ["createIsNotAtomic", [RACE]],
    ["listsInInsertionOrder", [LIST, START_AFTER]],
    ["listsFromStartAfterInclusive", [START_AFTER]],
    ["prefixIgnoresTrailingSlash", [LIST]],
    ["missingReadsAsEmpty", [MISSING]],
    ["emptyReadsAsMissing", [BYTES]],
    ["keepsCallersBuffer", [COPY]],
    ["ignoresSignal", [CANCELLED]],
    ["dropsContentType", [CONTENT_TYPE]],
    ["truncatesLargeObjects", [BYTES]],
    ["sizeCountsCharacters", [LIST]],
    ["reportsAbortAsOutage", [ABORTED_WHILE_RUNNING]],
  ])("fails a store that has the flaw %s", async (flaw, expected) => {
    const failed = await failingChecks((t) =>
      describeObjectStoreConformance("x", flawedFactory([flaw]), { test: t, existsCode: EXISTS }),
    );
    expect(failed).toEqual(expect.arrayContaining(expected));
  });
});

describe("InMemoryResourceLeaseObjectStore", () => {
  it("lists in UTF-8 byte order, which differs from UTF-16 order outside the BMP", async () => {
    const store = new InMemoryResourceLeaseObjectStore();
    for (const key of ["p/\uff01", "p/🙂", "p/a"])
      await store.put(key, new Uint8Array([1]), { contentType: "text/plain" });
    const keys: string[] = [];
    for await (const entry of store.list("p/")) keys.push(entry.key);
    expect(keys).toEqual(["p/a", "p/\uff01", "p/🙂"]);
    expect(store.keys()).toEqual(keys);
    expect(store.size).toBe(3);
    expect(store.contentTypeOf("p/a")).toBe("text/plain");
  });

  it("refuses an empty key", async () => {
    const store = new InMemoryResourceLeaseObjectStore();
    await expect(store.put("", new Uint8Array(), { contentType: "text/plain" })).rejects.toMatchObject({
      status: "invalid-argument",
    });
  });
});
