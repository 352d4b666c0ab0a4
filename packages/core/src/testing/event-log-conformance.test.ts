import { describe, expect, it } from "vitest";
import type { CallOptions, ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { InMemoryResourceLeaseEventLog } from "../replication/in-memory-event-log.js";
import {
  type ConformanceEventLog,
  describeEventLogConformance,
  type EventLogConformanceFactory,
  type EventLogConformanceFixture,
  type EventLogGaps,
} from "./event-log-conformance.js";
import { eventsOfEveryType } from "./events-of-every-type.js";
import { failingChecks, nextTurn, registeredChecks } from "./test-helpers.js";

type Flaw =
  | "dropsMetadata"
  | "truncatesBodies"
  | "secondsOnly"
  | "ignoresLimit"
  | "exclusiveFrom"
  | "keepsHeadOfRefusedBatch"
  | "acceptsRepeats"
  | "ignoresSignal"
  | "reordersConcurrentPublishes"
  | "countsForLastSequence"
  | "reopenLosesLastEvent"
  | "reopenForgetsLastSequence";

const cancelled = () => new OmniRelayError({ status: "cancelled", code: "resourcelease.cancelled", message: "x" });
const outOfOrder = () => new OmniRelayError({ status: "failed-precondition", code: "test.out_of_order", message: "x" });

/** What the reference log writes for an event, with the codec flaws applied. */
function stored(event: ResourceLeaseReplicationEvent, flaws: ReadonlySet<Flaw>): ResourceLeaseReplicationEvent {
  let out = event;
  if (flaws.has("dropsMetadata")) out = { ...out, metadata: {} };
  if (flaws.has("secondsOnly")) out = { ...out, timestamp: Math.floor(out.timestamp / 1000) * 1000 };
  const body = out.item?.payload.body;
  if (flaws.has("truncatesBodies") && out.item && body && body.byteLength > 65_536) {
    out = { ...out, item: { ...out.item, payload: { ...out.item.payload, body: body.subarray(0, 65_536) } } };
  }
  return out;
}

/**
 * A log written for these tests, correct unless given flaws, over storage that outlives the instance. `gaps` is what
 * it actually does with a gap, which a test may declare differently to the suite.
 */
class ReferenceLog implements ConformanceEventLog {
  private floor: number;

  constructor(
    private readonly storage: ResourceLeaseReplicationEvent[],
    private readonly flaws: ReadonlySet<Flaw>,
    private readonly gaps: EventLogGaps,
  ) {
    this.floor = flaws.has("reopenForgetsLastSequence") ? 0 : (storage.at(-1)?.sequenceNumber ?? 0);
  }

  async publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    if (options.signal?.aborted && !this.flaws.has("ignoresSignal")) throw cancelled();
    if (this.flaws.has("reordersConcurrentPublishes")) await nextTurn((events[0]?.sequenceNumber ?? 0) % 2 ? 5 : 0);
    let previous = this.floor;
    const accepted: ResourceLeaseReplicationEvent[] = [];
    for (const event of events) {
      const n = event.sequenceNumber;
      const refuse =
        (n <= previous && !this.flaws.has("acceptsRepeats")) || (n > previous + 1 && this.gaps === "refused");
      if (refuse) {
        if (this.flaws.has("keepsHeadOfRefusedBatch")) this.commit(accepted);
        throw outOfOrder();
      }
      if (n > previous + 1 && this.gaps === "withheld") {
        this.commit(accepted);
        return new Promise<void>(() => undefined);
      }
      accepted.push(event);
      previous = n;
    }
    this.commit(accepted);
  }

  private commit(events: readonly ResourceLeaseReplicationEvent[]): void {
    for (const event of events) {
      const at = this.storage.findIndex((e) => e.sequenceNumber === event.sequenceNumber);
      if (at >= 0) this.storage[at] = stored(event, this.flaws);
      else this.storage.push(stored(event, this.flaws));
      this.floor = Math.max(this.floor, event.sequenceNumber);
    }
  }

  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({ status: "invalid-argument", code: "test.limit", message: "x" });
    }
    const from = this.flaws.has("exclusiveFrom") ? fromSequence + 1 : fromSequence;
    const selected = this.storage.filter((e) => e.sequenceNumber >= from);
    const out = this.flaws.has("ignoresLimit") || limit === undefined ? selected : selected.slice(0, limit);
    return (async function* () {
      yield* out;
    })();
  }

  async lastSequence(): Promise<number> {
    if (this.flaws.has("countsForLastSequence")) return this.storage.length;
    return this.storage.at(-1)?.sequenceNumber ?? 0;
  }
}

interface ReferenceFixture extends EventLogConformanceFixture {
  readonly storage: ResourceLeaseReplicationEvent[];
}

function referenceFactory(flaws: readonly Flaw[], gaps: EventLogGaps): EventLogConformanceFactory<ReferenceFixture> {
  const set = new Set(flaws);
  const open = (storage: ResourceLeaseReplicationEvent[]): ReferenceFixture => ({
    storage,
    log: new ReferenceLog(storage, set, gaps),
    close: async () => undefined,
  });
  return {
    create: async () => open([]),
    reopen: async (closed) => {
      if (set.has("reopenLosesLastEvent")) closed.storage.pop();
      return open(closed.storage);
    },
  };
}

const test = { describe, it };

describeEventLogConformance(
  "InMemoryResourceLeaseEventLog",
  { create: async () => ({ log: new InMemoryResourceLeaseEventLog(), close: async () => undefined }) },
  { test, gaps: "kept" },
);

for (const gaps of ["kept", "refused", "withheld"] as const) {
  describeEventLogConformance(`reference log with gaps ${gaps}, reopened`, referenceFactory([], gaps), {
    test,
    gaps,
    withheldWaitMs: 30,
  });
}

const EVERY_TYPE = "reads back an event of every type, deep-equal and in order, with every field";
const LARGE = "round-trips an event with a 1048576-byte body between small ones";
const RANGE = "read(from, limit) returns exactly the requested range, across pages";
const REPEAT = "refuses a batch that repeats a sequence number, storing none of it";
const STEP_BACK = "refuses a batch that steps back, storing none of it";
const AT_OR_BELOW = "refuses a batch at or below lastSequence, storing none of it";
const CONCURRENT = "stores concurrent publishes in call order";
const CANCELLED = "refuses a publish whose signal is aborted with cancelled, storing nothing";
const REOPEN = "reopens with every event and lastSequence kept, and continues after them";
const REOPEN_STALE = "never lets a reopened log take a stored sequence number again";
const gapAfter = (gaps: EventLogGaps) => `a gap after the last stored event is ${gaps}`;
const gapInside = (gaps: EventLogGaps) => `a gap inside a batch is ${gaps}`;

const failuresOf = (flaws: readonly Flaw[], actual: EventLogGaps, declared: EventLogGaps = actual) =>
  failingChecks((t) =>
    describeEventLogConformance("under test", referenceFactory(flaws, actual), {
      test: t,
      gaps: declared,
      withheldWaitMs: 20,
    }),
  );

describe("the event log suite", () => {
  it("registers every check once, the reopen checks only with factory.reopen", () => {
    const withReopen = [
      ...registeredChecks((t) =>
        describeEventLogConformance("x", referenceFactory([], "refused"), { test: t, gaps: "refused" }),
      ).keys(),
    ];
    const withoutReopen = [
      ...registeredChecks((t) =>
        describeEventLogConformance(
          "x",
          { create: referenceFactory([], "refused").create },
          { test: t, gaps: "refused" },
        ),
      ).keys(),
    ];
    expect(withReopen).toEqual([...withoutReopen, REOPEN, REOPEN_STALE]);
    expect(withReopen).toHaveLength(16);
  });

  it("refuses to register without a test API or with an unknown gaps mode", () => {
    const factory = referenceFactory([], "kept");
    expect(() => describeEventLogConformance("x", factory, { gaps: "kept" } as never)).toThrow(/options.test/);
    expect(() => describeEventLogConformance("x", factory, { test, gaps: "sometimes" as never })).toThrow(
      /options.gaps/,
    );
  });

  it("passes a correct log in every gap mode", async () => {
    for (const gaps of ["kept", "refused", "withheld"] as const) expect(await failuresOf([], gaps)).toEqual([]);
  });

  it.each<[Flaw, EventLogGaps, string[]]>([
    ["dropsMetadata", "refused", [EVERY_TYPE]],
    ["secondsOnly", "refused", [EVERY_TYPE, RANGE]],
    ["truncatesBodies", "refused", [LARGE]],
    ["ignoresLimit", "refused", [RANGE, EVERY_TYPE, LARGE]],
    ["exclusiveFrom", "refused", [RANGE, EVERY_TYPE]],
    ["keepsHeadOfRefusedBatch", "refused", [REPEAT, STEP_BACK, gapInside("refused")]],
    ["acceptsRepeats", "refused", [REPEAT, STEP_BACK, AT_OR_BELOW]],
    ["ignoresSignal", "refused", [CANCELLED]],
    ["reordersConcurrentPublishes", "refused", [CONCURRENT]],
    ["countsForLastSequence", "kept", [gapAfter("kept"), gapInside("kept")]],
    ["reopenLosesLastEvent", "refused", [REOPEN]],
    ["reopenForgetsLastSequence", "refused", [REOPEN_STALE]],
    ["reopenForgetsLastSequence", "kept", [REOPEN_STALE]],
  ])("fails a log that has the flaw %s (gaps %s)", async (flaw, gaps, expected) => {
    const failed = await failuresOf([flaw], gaps);
    expect(failed).toEqual(expect.arrayContaining(expected));
  });

  it.each<[EventLogGaps, EventLogGaps]>([
    ["kept", "refused"],
    ["kept", "withheld"],
    ["refused", "kept"],
  ])("fails a log whose gaps are %s when it declares them %s", async (actual, declared) => {
    const failed = await failuresOf([], actual, declared);
    expect(failed).toEqual(expect.arrayContaining([gapAfter(declared), gapInside(declared)]));
  });

  it("refused and withheld gaps differ only where the suite says: a refused-gaps log is also correctly withheld", async () => {
    // Refusing (rejecting) a gap is allowed under 'withheld', which only forbids resolving and storing.
    expect(await failuresOf([], "refused", "withheld")).toEqual([]);
  });
});

describe("eventsOfEveryType", () => {
  it("has one event of every type, numbered from the given sequence, fresh on every call", () => {
    const events = eventsOfEveryType(10);
    expect(events.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Heartbeat",
      "Completed",
      "Failed",
      "DrainSnapshot",
      "RestoreSnapshot",
      "LeaseExpired",
      "Requeued",
      "DeadLettered",
      "Redriven",
      "DeadLetterPurged",
      "Cancelled",
      "ScheduleUpserted",
      "ScheduleRemoved",
      "LeaseRefused",
    ]);
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => 10 + i));
    expect(eventsOfEveryType(10)).toEqual(events);
    expect(eventsOfEveryType(10)[0]).not.toBe(events[0]);
  });
});
