import { strictEqual } from "node:assert/strict";
import type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import {
  assertOmniError,
  assertSame,
  type ConformanceFixture,
  type ConformanceTestApi,
  checkTestApi,
  inScope,
  patternBytes,
  rejectionOf,
} from "./conformance-support.js";
import { checkFailoverReplay } from "./deterministic-store-failover.js";

/** An open deterministic state store made by a {@link DeterministicStoreConformanceFactory}. */
export interface DeterministicStoreConformanceFixture extends ConformanceFixture {
  /** The store under test. */
  readonly store: DeterministicStateStore;
}

/**
 * Makes the stores the suite checks. Give every `create()` its own storage (a temp file or folder) and remove it in
 * your own `afterEach`; the suite only closes instances.
 */
export interface DeterministicStoreConformanceFactory<
  F extends DeterministicStoreConformanceFixture = DeterministicStoreConformanceFixture,
> {
  /** Opens a fresh, empty store on new storage. Called at the start of every check. */
  create(): Promise<F>;
  /**
   * Opens the storage of `closed` again, as a restarted process would (the suite has closed `closed` first). Leave
   * it out for a store that does not outlive its instance (in memory): the reopen check is then not registered.
   */
  reopen?(closed: F): Promise<F>;
  /**
   * Opens a second instance on the storage of `open`, used at the same time (another process, another connection):
   * `tryAdd` must stay insert-if-absent between them. Leave it out when a store has one instance only; the
   * cross-instance race is then not registered.
   */
  openAnother?(open: F): Promise<F>;
}

/** Options of {@link describeDeterministicStoreConformance}. */
export interface DeterministicStoreConformanceOptions {
  /** The test framework's `describe` and `it`, e.g. `{ describe, it }` imported from `vitest`. */
  readonly test: ConformanceTestApi;
}

interface Subject {
  readonly store: DeterministicStateStore;
  readonly reopen: () => Promise<DeterministicStateStore>;
  readonly another: () => Promise<DeterministicStateStore>;
}

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0, 123);
/** 9999-12-31T23:59:59.999Z. */
const LAST_TIME = 253_402_300_799_999;
const text = (value: string) => new TextEncoder().encode(value);

/** A record recorded at T0; spread it with `recordedAt` for another time. */
const record = (kind: string, payload: Uint8Array | string = "x", version = 1): DeterministicRecord => ({
  kind,
  version,
  payload: typeof payload === "string" ? text(payload) : payload,
  recordedAt: T0,
});

/** Records at the edges of the contract: every byte, empty and large payloads, extreme versions and times. */
function edgeRecords(): [string, DeterministicRecord][] {
  return [
    [
      "effect/1",
      record(
        "omnirelay.effect",
        Uint8Array.from({ length: 256 }, (_, i) => i),
        1,
      ),
    ],
    ["empty", { ...record("app.ü/🙂 kind", new Uint8Array(0), 0), recordedAt: 0 }],
    [
      "large",
      { ...record("omnirelay.version", patternBytes(256 * 1024), Number.MAX_SAFE_INTEGER), recordedAt: LAST_TIME },
    ],
    ["negative-version", { ...record("k", "v", -7), recordedAt: 1 }],
  ];
}

/**
 * Registers the deterministic-state-store conformance suite: the behaviour every `DeterministicStateStore` (SQLite,
 * a filesystem, in memory) must have for deterministic capture to be exactly-once.
 *
 * Checked: an absent key reads as `undefined`; `tryAdd` inserts only when absent (returning `true`) and otherwise
 * returns `false` and changes nothing; `set` inserts and replaces; records round-trip exactly (kind, version, payload
 * bytes, recordedAt), also at the edges; keys match exactly (case, spaces, Unicode normalisation, length); the store
 * keeps its own copy of a payload; concurrent `tryAdd`s of one key have exactly one winner, whose record is stored
 * (with `factory.openAnother`, also across instances); blank keys and malformed records are refused with
 * `invalid-argument` and the codes of `ErrorCodes.deterministic`, storing nothing. With `factory.reopen`: every record
 * survives a reopen and `tryAdd` still refuses stored keys.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * import { describeDeterministicStoreConformance } from "@omnirelay/core/testing";
 *
 * const open = async (path: string) => {
 *   const store = await SqliteDeterministicStateStore.open({ path });
 *   return { path, store, close: () => store.close() };
 * };
 * describeDeterministicStoreConformance(
 *   "SQLite",
 *   { create: () => open(tempPath()), reopen: (closed) => open(closed.path), openAnother: (open_) => open(open_.path) },
 *   { test: { describe, it } },
 * );
 * ```
 */
export function describeDeterministicStoreConformance<F extends DeterministicStoreConformanceFixture>(
  name: string,
  factory: DeterministicStoreConformanceFactory<F>,
  options: DeterministicStoreConformanceOptions,
): void {
  const test = checkTestApi(options?.test, "describeDeterministicStoreConformance");
  const reopenStorage = factory.reopen?.bind(factory);
  const openAnother = factory.openAnother?.bind(factory);
  const check = (title: string, body: (subject: Subject) => Promise<void>) =>
    test.it(title, () =>
      inScope<F>(async (scope) => {
        let current = scope.add(await factory.create());
        const first = current;
        await body({
          get store() {
            return current.store;
          },
          reopen: async () => {
            if (!reopenStorage) throw new Error("unreachable: reopen check registered without factory.reopen");
            const closed = current;
            await scope.close(closed);
            current = scope.add(await reopenStorage(closed));
            return current.store;
          },
          another: async () => {
            if (!openAnother) throw new Error("unreachable: cross-instance check registered without openAnother");
            return scope.add(await openAnother(first)).store;
          },
        });
      }),
    );

  test.describe(`deterministic state store conformance: ${name}`, () => {
    check("get of an absent key is undefined", async ({ store }) => {
      strictEqual(await store.get("absent"), undefined, "get of a key never written");
    });

    check("tryAdd inserts an absent key (true) and leaves a present one alone (false)", async ({ store }) => {
      strictEqual(await store.tryAdd("k", record("first", "one")), true, "tryAdd of an absent key");
      strictEqual(await store.tryAdd("k", record("second", "two", 2)), false, "tryAdd of a present key");
      assertSame(await store.get("k"), record("first", "one"), "the record after a refused tryAdd");
      await store.set("s", record("by-set"));
      strictEqual(await store.tryAdd("s", record("other")), false, "tryAdd of a key written by set");
      assertSame(await store.get("s"), record("by-set"), "a record written by set after a refused tryAdd");
    });

    check("set inserts an absent key and replaces a present one", async ({ store }) => {
      await store.set("k", record("a", "first", 1));
      assertSame(await store.get("k"), record("a", "first", 1), "after set of an absent key");
      await store.set("k", { ...record("b", "second, longer", 2), recordedAt: T0 + 1 });
      assertSame(
        await store.get("k"),
        { ...record("b", "second, longer", 2), recordedAt: T0 + 1 },
        "after set of a present key",
      );
      await store.tryAdd("t", record("t"));
      await store.set("t", record("t2", "", 3));
      assertSame(await store.get("t"), record("t2", "", 3), "set replaces a record made by tryAdd");
    });

    check("records round-trip exactly: kind, version, payload bytes and recordedAt", async ({ store }) => {
      for (const [key, value] of edgeRecords()) await store.set(`set/${key}`, value);
      for (const [key, value] of edgeRecords()) strictEqual(await store.tryAdd(`add/${key}`, value), true, key);
      for (const [key, value] of edgeRecords()) {
        assertSame(await store.get(`set/${key}`), value, `record ${key} written by set`);
        assertSame(await store.get(`add/${key}`), value, `record ${key} written by tryAdd`);
      }
    });

    check(
      "keys match exactly: case, spaces, Unicode normalisation and length make distinct keys",
      async ({ store }) => {
        const keys = ["k", "K", "k ", " k", "\u00e9", "e\u0301", "a/b", "a\\b", "../k", "🙂", "x".repeat(1000)];
        for (const [i, key] of keys.entries()) strictEqual(await store.tryAdd(key, record(`kind-${i}`)), true, key);
        for (const [i, key] of keys.entries()) assertSame(await store.get(key), record(`kind-${i}`), `get(${key})`);
        strictEqual(await store.get("x".repeat(999)), undefined, "a key one character shorter");
      },
    );

    check("keeps its own copy: changing a written payload or a read record changes nothing", async ({ store }) => {
      const payload = Uint8Array.from([1, 2, 3]);
      await store.set("set", record("k", payload));
      await store.tryAdd("add", record("k", payload));
      payload.fill(9);
      for (const key of ["set", "add"]) {
        const read = await store.get(key);
        assertSame(read?.payload, Uint8Array.from([1, 2, 3]), `${key}: after the caller changed its payload`);
        read?.payload.fill(7);
        assertSame((await store.get(key))?.payload, Uint8Array.from([1, 2, 3]), `${key}: after changing a read copy`);
      }
    });

    check("concurrent tryAdd of one key: exactly one wins and its record is stored", async ({ store }) => {
      for (let round = 0; round < 10; round++) {
        const key = `race-${round}`;
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.tryAdd(key, record("contender", `contender-${i}`, i))),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        strictEqual(winners.length, 1, `round ${round}: tryAdds that returned true (${winners.join(", ")})`);
        const winner = winners[0] as number;
        assertSame(await store.get(key), record("contender", `contender-${winner}`, winner), `round ${round}: stored`);
      }
    });

    if (openAnother) {
      check(
        "concurrent tryAdd through two instances: exactly one wins, and both read its record",
        async ({ store, another }) => {
          const stores = [store, await another()];
          for (let round = 0; round < 20; round++) {
            const key = `race-${round}`;
            const results = await Promise.all(
              Array.from({ length: 6 }, (_, i) =>
                (stores[(i + round) % 2] as DeterministicStateStore).tryAdd(
                  key,
                  record("contender", `contender-${i}`, i),
                ),
              ),
            );
            const winners = results.flatMap((won, i) => (won ? [i] : []));
            strictEqual(winners.length, 1, `round ${round}: tryAdds that returned true (${winners.join(", ")})`);
            const winner = winners[0] as number;
            for (const [i, reader] of stores.entries()) {
              assertSame(await reader.get(key), record("contender", `contender-${winner}`, winner), `instance ${i}`);
            }
          }
        },
      );
      check(
        "a coordinator on each instance runs every event's effect once across a failover replay",
        async ({ store, another }) => {
          await checkFailoverReplay(store, await another());
        },
      );
    }

    check("refuses a blank key with invalid-argument, storing nothing", async ({ store }) => {
      const code = ErrorCodes.deterministic.keyRequired;
      for (const key of ["", "   ", "\t\n"]) {
        const name = JSON.stringify(key);
        assertOmniError(
          await rejectionOf(() => store.get(key), `get(${name})`),
          { status: "invalid-argument", code },
          `get(${name})`,
        );
        for (const op of ["set", "tryAdd"] as const) {
          const what = `${op}(${name})`;
          assertOmniError(
            await rejectionOf(() => store[op](key, record("k")), what),
            { status: "invalid-argument", code },
            what,
          );
        }
      }
    });

    check("refuses a malformed record with invalid-argument, storing nothing", async ({ store }) => {
      const good = record("k");
      const bad: [string, DeterministicRecord][] = [
        ["blank kind", { ...good, kind: "" }],
        ["whitespace kind", { ...good, kind: "  " }],
        ["fractional version", { ...good, version: 1.5 }],
        ["NaN version", { ...good, version: Number.NaN }],
        ["payload that is not bytes", { ...good, payload: [1, 2, 3] as unknown as Uint8Array }],
        ["NaN recordedAt", { ...good, recordedAt: Number.NaN }],
        ["infinite recordedAt", { ...good, recordedAt: Number.POSITIVE_INFINITY }],
      ];
      for (const [what, value] of bad) {
        for (const op of ["set", "tryAdd"] as const) {
          const call = `${op} of a record with a ${what}`;
          const error = await rejectionOf(() => store[op]("k", value), call);
          assertOmniError(error, { status: "invalid-argument", code: ErrorCodes.deterministic.recordInvalid }, call);
        }
      }
      strictEqual(await store.get("k"), undefined, "nothing is stored for refused records");
    });

    if (reopenStorage) {
      check("keeps every record across a reopen; tryAdd still refuses stored keys", async (subject) => {
        for (const [key, value] of edgeRecords()) await subject.store.set(key, value);
        await subject.store.tryAdd("added", record("added"));
        const reopened = await subject.reopen();
        for (const [key, value] of edgeRecords()) assertSame(await reopened.get(key), value, `${key} after a reopen`);
        strictEqual(await reopened.tryAdd("added", record("again")), false, "tryAdd of a stored key after a reopen");
        assertSame(await reopened.get("added"), record("added"), "the record of a refused tryAdd after a reopen");
        strictEqual(await reopened.tryAdd("new", record("new")), true, "tryAdd of a new key after a reopen");
        assertSame(await (await subject.reopen()).get("new"), record("new"), "a record added after a reopen");
      });
    }
  });
}
