import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Dispatcher,
  isOmniRelayError,
  ResourceLeaseDispatcherComponent,
  ResourceLeaseQueue,
  type ResourceLeaseQueueOptions,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
} from "../src/index.js";
import { FakeClock } from "../src/testing/index.js";
import { decodeJsonBody, decodeReplicationEvent, encodeReplicationEvent } from "../src/wire/index.js";

// Property-based fuzzing of every resourcelease verb's request decoder and of the log's encode -> decode -> replay
// round trip (hardening issue; DESIGN.md §8). Whatever a request holds, the answer is a result or an error with a
// non-internal status, the queue is never faulted, and the JSON text of its events replays to the same state.
// CI runs a fixed seed and a bounded number of runs; `pnpm fuzz` runs longer (FUZZ_RUNS, FUZZ_SEED).

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

/** Stores events as durable sinks do, as the JSON text of their envelope; a publish that cannot encode faults. */
class JsonTextLog implements ResourceLeaseReplicator {
  readonly rows: string[] = [];
  async publish(events: readonly ResourceLeaseReplicationEvent[]): Promise<void> {
    for (const event of events) this.rows.push(JSON.stringify(encodeReplicationEvent(event)));
  }
  events(): ResourceLeaseReplicationEvent[] {
    return this.rows.map((row) => decodeReplicationEvent(JSON.parse(row)));
  }
}

// ------------------------------------------------------------------ arbitraries: valid-looking extremes and junk

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nearLength = (n: number) => fc.integer({ min: Math.max(0, n - 2), max: n + 2 }).map((k) => "x".repeat(k));
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: loneSurrogate, minLength: 1, maxLength: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\u0000", "__proto__", "constructor", "\ud83d\ude00") },
  { weight: 1, arbitrary: fc.constantFrom(128, 256, 1024, 4096).chain(nearLength) },
);
const integer = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 40 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      2 ** 31 - 1,
      2 ** 31,
      2 ** 52,
      2 ** 52 + 1,
      2 ** 53 - 1,
      2 ** 53,
      2 ** 53 + 2,
      1e308,
      -0,
      1.5,
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("1", "7", "1e3", "0x10", "-1") },
);
const time = fc.oneof(
  fc.constantFrom(0, -1, 253_402_300_799_999, 253_402_300_800_000, 8_700_000_000_000_000, 8_640_000_000_000_001),
  fc.constantFrom(
    "2026-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00Z",
    "+010000-01-01T00:00:00.000Z",
    "2025-02-30T00:00:00Z",
    "0",
    "42",
    "Dec 25 1999",
    "1970-01-01T00:00:00+01:00",
  ),
  fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }),
);
const base64 = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("base64")),
  fc.constantFrom("", "=", "!!", "AA==", "AAA", "A", "-_-_", "QUJD\nRA=="),
);
const junk = fc.oneof(fc.constantFrom(null, true, false, 0, -1, [], {}, [1], { a: 1 }, "", "x"), integer, text);
/** Mostly a value of `arb`, sometimes absent, rarely junk: most requests get past the first field. */
const maybe = <T>(arb: fc.Arbitrary<T>) =>
  fc.option(fc.oneof({ weight: 15, arbitrary: arb }, { weight: 1, arbitrary: junk }), { nil: undefined, freq: 3 });
/** Mostly a plain valid value, sometimes an extreme one. */
const mostly = <T, U>(plain: fc.Arbitrary<T>, extreme: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 6, arbitrary: plain }, { weight: 1, arbitrary: extreme });

const attributes = fc.oneof(
  fc.dictionary(text, text, { maxKeys: 4 }),
  fc.integer({ min: 63, max: 66 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]))),
  fc.constant(JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>),
);

const payloadArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record(
      {
        resourceType: mostly(fc.constant("table"), fc.oneof(text, junk)),
        resourceId: mostly(
          fc.string({ minLength: 1, maxLength: 6 }).filter((x) => x.trim() !== ""),
          fc.oneof(text, junk),
        ),
        partitionKey: mostly(fc.constantFrom("p0", "p1"), fc.oneof(text, junk)),
        payloadEncoding: mostly(fc.constant("json"), fc.oneof(text, junk)),
        body: maybe(base64),
        attributes: maybe(
          mostly(
            fc.dictionary(fc.string({ minLength: 1, maxLength: 3 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
            attributes,
          ),
        ),
        requestId: maybe(mostly(fc.constantFrom("r1", "r2", "r3"), text)),
        // Scheduling: due times around the fake clock's start and the edges of what a log holds, delays, int32 edges.
        notBefore: maybe(
          mostly(fc.integer({ min: Date.UTC(2026, 0, 1) - 1000, max: Date.UTC(2026, 0, 1) + 60_000 }), time),
        ),
        delayMs: maybe(mostly(fc.integer({ min: 0, max: 60_000 }), fc.oneof(integer, fc.constant(Number.NaN)))),
        priority: maybe(
          mostly(
            fc.integer({ min: -3, max: 3 }),
            fc.constantFrom(2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 1.5, Number.NaN, "7", "1e3"),
          ),
        ),
      },
      { requiredKeys: ["resourceType", "resourceId", "partitionKey", "payloadEncoding"] },
    ),
  },
  { weight: 1, arbitrary: junk },
);

const tokenArb = fc.record(
  { sequenceId: maybe(integer), attempt: maybe(integer), leaseId: maybe(text), fencingToken: maybe(integer) },
  { requiredKeys: [] },
);

/** The highest ids and counters a caller could push a queue to: where a counter's next step leaves the safe range. */
const edgeId = fc.constantFrom(2 ** 31 - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 2, 2 ** 53 - 1);

// Restore items are mostly well-formed, so that the extremes in them reach the queue and the log.
const pendingItemArb = fc.record(
  {
    payload: mostly(
      payloadArb.filter((p) => typeof p === "object" && p !== null),
      payloadArb,
    ),
    sequenceId: fc.oneof(fc.integer({ min: 1, max: 60 }), edgeId, integer),
    attempt: maybe(fc.oneof(fc.integer({ min: 1, max: 4 }), edgeId, integer)),
    enqueuedAt: maybe(fc.oneof(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }), time)),
    lastError: maybe(fc.record({ message: maybe(text), code: maybe(text) }, { requiredKeys: [] })),
    lastOwnershipToken: maybe(
      fc.oneof(fc.record({ sequenceId: edgeId, attempt: edgeId, leaseId: text, fencingToken: edgeId }), tokenArb),
    ),
    availableAt: maybe(time),
  },
  { requiredKeys: ["payload", "sequenceId"] },
);

/** One call: a verb and a body (a JSON value), where a body may reuse a token or item the fuzzer saw earlier. */
type Call =
  | { verb: string; body?: unknown; raw?: string }
  | { verb: "held"; use: "heartbeat" | "complete" | "fail"; pick: number; extra: Record<string, unknown> }
  | { verb: "restoreDrained"; pick: number; renumber: boolean }
  | { verb: "advance"; ms: number };

const callArb: fc.Arbitrary<Call> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ verb: fc.constant("enqueue"), body: fc.record({ payload: payloadArb }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      verb: fc.constant("enqueue"),
      body: fc.record({ payloads: fc.oneof(fc.array(payloadArb, { maxLength: 4 }), junk) }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      verb: fc.constant("lease"),
      body: fc.record(
        { peerId: maybe(text), maxItems: maybe(integer), waitMs: fc.constantFrom(undefined, 0, -1, "0") },
        { requiredKeys: [] },
      ),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      verb: fc.constant("held" as const),
      use: fc.constantFrom("heartbeat" as const, "complete" as const, "fail" as const),
      pick: fc.nat(),
      extra: fc.record(
        {
          reason: maybe(text),
          errorCode: maybe(text),
          requeue: maybe(fc.boolean()),
          delayMs: maybe(integer),
          metadata: maybe(attributes),
        },
        { requiredKeys: [] },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      verb: fc.constantFrom("heartbeat", "complete", "fail"),
      body: fc.oneof(
        fc.record({ ownershipToken: maybe(tokenArb) }),
        fc.record({ ownershipTokens: fc.oneof(fc.array(tokenArb, { maxLength: 3 }), junk) }),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      verb: fc.constant("drain"),
      body: fc.record({ maxItems: maybe(integer) }, { requiredKeys: [] }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ verb: fc.constant("restoreDrained" as const), pick: fc.nat(), renumber: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      verb: fc.constant("restore"),
      body: fc.record(
        {
          items: fc.oneof(
            { weight: 6, arbitrary: fc.array(pendingItemArb, { maxLength: 3 }) },
            { weight: 1, arbitrary: junk },
          ),
          renumber: maybe(fc.boolean()),
        },
        { requiredKeys: [] },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      verb: fc.constant("deadletters"),
      body: fc.record({ limit: maybe(integer) }, { requiredKeys: [] }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      verb: fc.constant("redrive"),
      body: fc.record({ sequenceIds: maybe(fc.array(integer, { maxLength: 3 })) }, { requiredKeys: [] }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ verb: fc.constant("stats"), body: fc.constant({}) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      verb: fc.constantFrom("enqueue", "lease", "fail", "restore", "drain"),
      raw: fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.constantFrom("", "[]", "null", "1", '"x"', "{", '{"payload":', "\u0000"),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ verb: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
  },
);

// ------------------------------------------------------------------------------------------------ the properties

const QUEUE: ResourceLeaseQueueOptions = {
  capacity: 40,
  maxBytes: 4000,
  maxBodyBytes: 48,
  leaseDurationMs: 10_000,
  maxAttempts: 3,
  retryBackoff: { initialDelayMs: 500 },
  deadLetters: { maxCount: 3, maxAgeMs: 60_000 },
  // The grant structure in full: per-key caps, a rate, fair sharing and aging all shape what the log records.
  keys: { by: "partitionKey", maxActive: 2, rate: { grants: 3, intervalMs: 5_000 }, fair: true, weights: { p1: 2 } },
  priorityAging: { msPerLevel: 10_000 },
};

/** Statuses a request may earn; `internal` (a bug) and `unknown` never. */
const expected = new Set([
  "invalid-argument",
  "not-found",
  "failed-precondition",
  "already-exists",
  "resource-exhausted",
  "unavailable",
  "permission-denied",
]);

async function run(calls: Call[]): Promise<void> {
  const clock = new FakeClock();
  const log = new JsonTextLog();
  const dispatcher = new Dispatcher({ service: "fuzz" });
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    queueOptions: { ...QUEUE, clock, replicator: log },
  });
  const held: Array<Record<string, unknown>> = [];
  const drained: unknown[][] = [];
  const send = async (verb: string, body: Uint8Array): Promise<Record<string, any> | undefined> => {
    try {
      // What the HTTP inbound does: parse, decode and check once with the procedure's definition, dispatch, encode.
      const spec = dispatcher.resolve(`resourcelease::${verb}`);
      const meta = {
        service: "fuzz",
        procedure: `resourcelease::${verb}`,
        transport: "in-process" as const,
        caller: "fuzzer",
        headers: {},
        signal: new AbortController().signal,
      };
      const res = await dispatcher.dispatch({ meta, message: spec.readRequest(decodeJsonBody(body)) });
      return JSON.parse(JSON.stringify(spec.definition.response.write(res.message, "json")));
    } catch (error) {
      if (!isOmniRelayError(error)) throw error;
      if (!expected.has(error.status))
        throw new Error(`${verb} answered ${error.status} ${error.code}: ${error.message}`);
      return undefined;
    }
  };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? "null");
  try {
    for (const call of calls) {
      let verb = call.verb;
      let body: Uint8Array;
      if ("ms" in call) {
        clock.advance(call.ms);
        continue;
      } else if ("use" in call) {
        if (held.length === 0) continue;
        const token = held[call.pick % held.length];
        verb = call.use;
        body = json({ ownershipToken: token, ...(call.use === "fail" ? call.extra : {}) });
      } else if ("renumber" in call) {
        if (drained.length === 0) continue;
        const [page] = drained.splice(call.pick % drained.length, 1);
        verb = "restore";
        body = json({ items: page, ...(call.renumber ? { renumber: true } : {}) });
      } else if (call.raw !== undefined) {
        body = Buffer.from(call.raw);
      } else {
        body = json(call.body);
      }
      const answer = await send(verb, body);
      if (!answer) continue;
      if (verb === "lease") {
        for (const grant of answer.items ?? (answer.ownershipToken ? [answer] : [])) held.push(grant.ownershipToken);
      } else if (verb === "drain") {
        drained.push(answer.items);
      }
    }
    const queue = component.queue;
    const live = queue.stats();
    expect(["running", "draining"]).toContain(live.state);
    // The JSON text of every event decodes and replays to the live state.
    const replica = await ResourceLeaseQueue.rebuild(log.events(), { ...QUEUE, clock }, { activeLeases: "keep" });
    expect(replica.snapshot()).toEqual(queue.snapshot());
    expect(replica.stats()).toEqual(live);
    // And a restart (leases expired, bounds applied) publishes events that are storable too.
    const restartLog = new JsonTextLog();
    const restarted = await ResourceLeaseQueue.rebuild(log.events(), { ...QUEUE, clock, replicator: restartLog });
    expect(restarted.stats().state).not.toBe("faulted");
    for (const row of restartLog.rows) decodeReplicationEvent(JSON.parse(row));
    await replica.close();
    await restarted.close();
  } finally {
    await component.close();
  }
}

describe("fuzz: every verb's request decoder and the log round trip", () => {
  it("answers every request with a result or a non-internal error, and the log replays to the live state", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(callArb, { minLength: 10, maxLength: 60, size: "max" }), (calls) => run(calls)),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
