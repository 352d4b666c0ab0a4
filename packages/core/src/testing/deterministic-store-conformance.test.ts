import { describe, expect, it } from "vitest";
import type { DeterministicRecord, DeterministicStateStore } from "../contracts/stores.js";
import { InMemoryDeterministicStateStore } from "../deterministic/in-memory-state-store.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import {
  type DeterministicStoreConformanceFactory,
  type DeterministicStoreConformanceFixture,
  describeDeterministicStoreConformance,
} from "./deterministic-store-conformance.js";
import { failingChecks, nextTurn } from "./test-helpers.js";

type Flaw =
  | "tryAddOverwrites"
  | "tryAddIsNotAtomic"
  | "tryAddIsAtomicPerInstanceOnly"
  | "setKeepsFirst"
  | "keepsCallersPayload"
  | "caseInsensitiveKeys"
  | "normalisesKeys"
  | "secondsOnly"
  | "acceptsBlankKeys"
  | "acceptsMalformedRecords"
  | "wrongErrorCode"
  | "reopenLosesRecords"
  | "anotherHasOwnStorage";

const invalid = (code: string) => new OmniRelayError({ status: "invalid-argument", code, message: "x" });

/** A store written for these tests over a shared map (the "storage"), correct unless given flaws. */
class FlawedStore implements DeterministicStateStore {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly records: Map<string, DeterministicRecord>,
    private readonly flaws: ReadonlySet<Flaw>,
  ) {}

  private key(key: string): string {
    if (typeof key !== "string" || (key.trim().length === 0 && !this.flaws.has("acceptsBlankKeys"))) {
      throw invalid(
        this.flaws.has("wrongErrorCode")
          ? "resourcelease.argument.invalid"
          : "resourcelease.deterministic.key_required",
      );
    }
    if (this.flaws.has("caseInsensitiveKeys")) return key.toLowerCase();
    return this.flaws.has("normalisesKeys") ? key.normalize("NFC") : key;
  }

  private copy(record: DeterministicRecord): DeterministicRecord {
    const ok =
      typeof record.kind === "string" &&
      record.kind.trim().length > 0 &&
      Number.isSafeInteger(record.version) &&
      record.payload instanceof Uint8Array &&
      Number.isFinite(record.recordedAt);
    if (!ok && !this.flaws.has("acceptsMalformedRecords")) throw invalid("resourcelease.deterministic.record_invalid");
    const recordedAt = this.flaws.has("secondsOnly") ? Math.floor(record.recordedAt / 1000) * 1000 : record.recordedAt;
    const payload = this.flaws.has("keepsCallersPayload") ? record.payload : Uint8Array.from(record.payload);
    return { kind: record.kind, version: record.version, payload, recordedAt };
  }

  async get(key: string): Promise<DeterministicRecord | undefined> {
    const found = this.records.get(this.key(key));
    if (found === undefined || this.flaws.has("keepsCallersPayload")) return found;
    return { ...found, payload: Uint8Array.from(found.payload) };
  }

  async set(key: string, record: DeterministicRecord): Promise<void> {
    const k = this.key(key);
    const copy = this.copy(record);
    if (this.flaws.has("setKeepsFirst") && this.records.has(k)) return;
    this.records.set(k, copy);
  }

  tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    if (!this.flaws.has("tryAddIsAtomicPerInstanceOnly")) return this.add(key, record);
    const run = this.chain.then(() => this.add(key, record));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async add(key: string, record: DeterministicRecord): Promise<boolean> {
    const k = this.key(key);
    const copy = this.copy(record);
    const present = this.records.has(k);
    if (this.flaws.has("tryAddIsNotAtomic") || this.flaws.has("tryAddIsAtomicPerInstanceOnly")) await nextTurn();
    if (present && !this.flaws.has("tryAddOverwrites")) return false;
    this.records.set(k, copy);
    return true;
  }
}

interface FlawedFixture extends DeterministicStoreConformanceFixture {
  readonly records: Map<string, DeterministicRecord>;
}

function flawedFactory(flaws: readonly Flaw[]): DeterministicStoreConformanceFactory<FlawedFixture> {
  const set = new Set(flaws);
  const open = (records: Map<string, DeterministicRecord>): FlawedFixture => ({
    records,
    store: new FlawedStore(records, set),
    close: async () => undefined,
  });
  return {
    create: async () => open(new Map()),
    reopen: async (closed) => {
      if (set.has("reopenLosesRecords")) {
        const [first] = closed.records.keys();
        if (first !== undefined) closed.records.delete(first);
      }
      return open(closed.records);
    },
    openAnother: async (other) => open(set.has("anotherHasOwnStorage") ? new Map(other.records) : other.records),
  };
}

const test = { describe, it };

describeDeterministicStoreConformance(
  "InMemoryDeterministicStateStore",
  { create: async () => ({ store: new InMemoryDeterministicStateStore(), close: async () => undefined }) },
  { test },
);

describeDeterministicStoreConformance("reference store, reopened and shared", flawedFactory([]), { test });

const TRY_ADD = "tryAdd inserts an absent key (true) and leaves a present one alone (false)";
const SET = "set inserts an absent key and replaces a present one";
const ROUND_TRIP = "records round-trip exactly: kind, version, payload bytes and recordedAt";
const KEYS = "keys match exactly: case, spaces, Unicode normalisation and length make distinct keys";
const COPY = "keeps its own copy: changing a written payload or a read record changes nothing";
const RACE = "concurrent tryAdd of one key: exactly one wins and its record is stored";
const RACE_SHARED = "concurrent tryAdd through two instances: exactly one wins, and both read its record";
const BLANK = "refuses a blank key with invalid-argument, storing nothing";
const MALFORMED = "refuses a malformed record with invalid-argument, storing nothing";
const FAILOVER = "a coordinator on each instance runs every event's effect once across a failover replay";
const REOPEN = "keeps every record across a reopen; tryAdd still refuses stored keys";

describe("the deterministic store suite", () => {
  it("passes a correct store", async () => {
    expect(
      await failingChecks((t) => describeDeterministicStoreConformance("x", flawedFactory([]), { test: t })),
    ).toEqual([]);
  });

  it.each<[Flaw, string[]]>([
    ["tryAddOverwrites", [TRY_ADD, RACE]],
    ["tryAddIsNotAtomic", [RACE, RACE_SHARED]],
    ["tryAddIsAtomicPerInstanceOnly", [RACE_SHARED]],
    ["setKeepsFirst", [SET]],
    ["keepsCallersPayload", [COPY]],
    ["caseInsensitiveKeys", [KEYS]],
    ["normalisesKeys", [KEYS]],
    ["secondsOnly", [ROUND_TRIP]],
    ["acceptsBlankKeys", [BLANK]],
    ["acceptsMalformedRecords", [MALFORMED]],
    ["wrongErrorCode", [BLANK]],
    ["reopenLosesRecords", [REOPEN]],
    ["anotherHasOwnStorage", [RACE_SHARED, FAILOVER]],
  ])("fails a store that has the flaw %s", async (flaw, expected) => {
    const failed = await failingChecks((t) =>
      describeDeterministicStoreConformance("x", flawedFactory([flaw]), { test: t }),
    );
    expect(failed).toEqual(expect.arrayContaining(expected));
  });

  it("a store with one instance per storage runs without the cross-instance and reopen checks", async () => {
    const failed = await failingChecks((t) =>
      describeDeterministicStoreConformance(
        "x",
        { create: async () => ({ store: new InMemoryDeterministicStateStore(), close: async () => undefined }) },
        { test: t },
      ),
    );
    expect(failed).toEqual([]);
  });
});
