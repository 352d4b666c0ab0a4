import { AssertionError, strictEqual } from "node:assert/strict";
import type {
  ResourceLeaseEventLog,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicator,
} from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { hashReplicationEvent } from "../wire/chain.js";
import { EventChainVerifier } from "../wire/chain-verify.js";
import {
  assertOmniError,
  assertSame,
  type ConformanceFixture,
  type ConformanceTestApi,
  checkTestApi,
  collect,
  inScope,
  patternBytes,
  range,
  rejectionOf,
  settledWithin,
  small,
} from "./conformance-support.js";
import { eventsOfEveryType } from "./events-of-every-type.js";

/** A durable replicator that can be read back: what {@link describeEventLogConformance} tests. */
export type ConformanceEventLog = ResourceLeaseReplicator & ResourceLeaseEventLog;

/** An open event log made by an {@link EventLogConformanceFactory}, plus whatever the factory needs to reopen it. */
export interface EventLogConformanceFixture extends ConformanceFixture {
  /** The log under test. */
  readonly log: ConformanceEventLog;
}

/**
 * Makes the logs the suite checks. Give every `create()` its own storage (a temp file, a random prefix or node id)
 * and remove it in your own `afterEach`/`afterAll`; the suite only closes instances.
 */
export interface EventLogConformanceFactory<F extends EventLogConformanceFixture = EventLogConformanceFixture> {
  /** Opens a fresh, empty log on new storage. Called at the start of every check. */
  create(): Promise<F>;
  /**
   * Opens the storage of `closed` again, as a restarted process would (the suite has closed `closed` first). Every
   * event a resolved `publish` stored must be there. Leave it out for a log that does not outlive its instance (an
   * in-memory log): the checks that need it are then not registered, and the others skip their reopen step.
   */
  reopen?(closed: F): Promise<F>;
}

/**
 * What a log does with a publish whose sequence numbers skip some (a gap after the last stored event, or inside the
 * batch). Every log refuses numbers that do not strictly increase; gaps are where they legitimately differ:
 * - `'kept'`: the events are stored with their numbers; `read` and `lastSequence` follow the stored numbers
 *   (`InMemoryResourceLeaseEventLog`).
 * - `'refused'`: the publish rejects with status `failed-precondition` and stores nothing of its batch; the log
 *   holds an unbroken run of numbers (the SQLite and object-storage logs).
 * - `'withheld'`: the publish does not resolve (it may reject) and nothing after the gap is ever stored, while the
 *   log waits for the missing events; events of the batch before an inner gap may be stored, because a streaming
 *   replicator forwards contiguous runs as they come (the gRPC replicator and hub, without a backfill that has them).
 *   A stored sequence number published again after a reopen is withheld the same way. The suite waits
 *   `withheldWaitMs` before it checks that nothing was stored.
 */
export type EventLogGaps = "kept" | "refused" | "withheld";

/** Options of {@link describeEventLogConformance}. */
export interface EventLogConformanceOptions {
  /** The test framework's `describe` and `it`, e.g. `{ describe, it }` imported from `vitest`. */
  readonly test: ConformanceTestApi;
  /** What the log does with a gap in sequence numbers; see {@link EventLogGaps}. */
  readonly gaps: EventLogGaps;
  /** Body size of the large-event check. @defaultValue 1048576 (1 MiB) */
  readonly largeEventBytes?: number;
  /** How long a `'withheld'` publish must stay unresolved before the suite checks that nothing was stored. @defaultValue 300 */
  readonly withheldWaitMs?: number;
}

/** The log of one check; `reopen` closes it and continues on a reopened instance. */
interface Subject {
  readonly log: ConformanceEventLog;
  readonly reopen: (() => Promise<ConformanceEventLog>) | undefined;
}

const numbersOf = (events: readonly ResourceLeaseReplicationEvent[]) => events.map((e) => e.sequenceNumber);

async function numbers(log: ConformanceEventLog, from: number, limit?: number): Promise<number[]> {
  return numbersOf(await collect(log.read(from, limit)));
}

/** Asserts the log holds exactly `events` (read from 1, deep-equal) and `lastSequence` is the last one's number. */
async function assertHolds(
  log: ConformanceEventLog,
  events: readonly ResourceLeaseReplicationEvent[],
  what: string,
): Promise<void> {
  const stored = await collect(log.read(1));
  assertSame(numbersOf(stored), numbersOf(events), `${what}: sequence numbers read from 1`);
  assertSame(stored, events, `${what}: events read from 1`);
  strictEqual(await log.lastSequence(), events.at(-1)?.sequenceNumber ?? 0, `${what}: lastSequence()`);
}

/**
 * Registers the event-log conformance suite: the behaviour every `ResourceLeaseReplicator` that is also a
 * `ResourceLeaseEventLog` must have, so "SQLite, object storage, the hub all behave the same" is one suite. Each check
 * calls `factory.create()` for a fresh, empty log and closes every instance it opened afterwards.
 *
 * Checked: an empty log; publish then read returns the same events in order, deep-equal after the log's codec, for
 * an event of every type with values at the edges of what the queue accepts; the hash chain survives the codec (the
 * events read back verify with `EventChainVerifier`); a large body; `read(from, limit)` ranges
 * across pages; a bad limit is refused; an empty publish changes nothing; sequence numbers must strictly increase (a
 * repeat, a step back or a number at or below `lastSequence` is refused with `failed-precondition` and nothing of the
 * batch is stored); gaps as `options.gaps` says; concurrent publishes are stored in call order; a publish with an
 * aborted signal is refused with `cancelled` and stores nothing. With `factory.reopen`: everything survives a reopen,
 * the log continues after it, and a reopened log never takes a stored number again.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * import { describeEventLogConformance } from "@omnirelay/core/testing";
 *
 * const open = async (path: string) => {
 *   const log = await SqliteResourceLeaseReplicator.open({ path });
 *   return { path, log, close: () => log.close() };
 * };
 * describeEventLogConformance(
 *   "SQLite log",
 *   { create: () => open(tempPath()), reopen: (closed) => open(closed.path) },
 *   { test: { describe, it }, gaps: "refused" },
 * );
 * ```
 */
export function describeEventLogConformance<F extends EventLogConformanceFixture>(
  name: string,
  factory: EventLogConformanceFactory<F>,
  options: EventLogConformanceOptions,
): void {
  const test = checkTestApi(options?.test, "describeEventLogConformance");
  const gaps = options.gaps;
  if (gaps !== "kept" && gaps !== "refused" && gaps !== "withheld") {
    throw new TypeError("describeEventLogConformance: options.gaps must be 'kept', 'refused' or 'withheld'.");
  }
  const largeBytes = options.largeEventBytes ?? 1024 * 1024;
  const waitMs = options.withheldWaitMs ?? 300;
  const reopenStorage = factory.reopen?.bind(factory);
  const check = (title: string, body: (subject: Subject) => Promise<void>) =>
    test.it(title, () =>
      inScope<F>(async (scope) => {
        let current = scope.add(await factory.create());
        const reopen = reopenStorage
          ? async () => {
              const closed = current;
              await scope.close(closed);
              current = scope.add(await reopenStorage(closed));
              return current.log;
            }
          : undefined;
        await body({
          get log() {
            return current.log;
          },
          reopen,
        });
      }),
    );

  /** Publishes `base`, then `bad`, which must be refused whole (also after a reopen, when the log has one). */
  async function refusedWhole(
    subject: Subject,
    { base, bad }: { base: readonly ResourceLeaseReplicationEvent[]; bad: readonly ResourceLeaseReplicationEvent[] },
    what: string,
  ): Promise<void> {
    await subject.log.publish(base);
    const error = await rejectionOf(subject.log.publish(bad), what);
    assertOmniError(error, "failed-precondition", what);
    await assertHolds(subject.log, base, `${what}, after the refusal`);
    if (subject.reopen) await assertHolds(await subject.reopen(), base, `${what}, after a reopen`);
  }

  /**
   * Publishes `base`, then `batch` (whose numbers skip some after its first `prefix` events), and checks what
   * `options.gaps` promises; after a reopen too.
   */
  async function gapped(
    subject: Subject,
    {
      base,
      batch,
      prefix,
    }: {
      base: readonly ResourceLeaseReplicationEvent[];
      batch: readonly ResourceLeaseReplicationEvent[];
      prefix: number;
    },
    what: string,
  ): Promise<void> {
    await subject.log.publish(base);
    const publish = subject.log.publish(batch);
    publish.catch(() => undefined);
    let allowed: ResourceLeaseReplicationEvent[][];
    if (gaps === "kept") {
      await publish;
      allowed = [[...base, ...batch]];
    } else if (gaps === "refused") {
      assertOmniError(await rejectionOf(publish, what), "failed-precondition", what);
      allowed = [[...base]];
    } else {
      const outcome = await settledWithin(publish, waitMs);
      if (outcome === "resolved") {
        throw new AssertionError({ message: `${what}: a publish with a gap resolved; gaps are 'withheld'.` });
      }
      allowed = prefix > 0 ? [[...base], [...base, ...batch.slice(0, prefix)]] : [[...base]];
    }
    const holdsOneOf = async (log: ConformanceEventLog, when: string) => {
      const stored = await collect(log.read(1));
      const match = allowed.find((events) => events.length === stored.length) ?? (allowed[0] as []);
      await assertHolds(log, match, `${what}, ${when}`);
    };
    await holdsOneOf(subject.log, "after the publish");
    if (subject.reopen) await holdsOneOf(await subject.reopen(), "after a reopen");
  }

  test.describe(`event log conformance: ${name}`, () => {
    check("starts empty: lastSequence() is 0 and read() yields nothing", async ({ log }) => {
      strictEqual(await log.lastSequence(), 0, "lastSequence() of an empty log");
      assertSame(await numbers(log, 1), [], "read(1) of an empty log");
      assertSame(await numbers(log, 0, 10), [], "read(0, 10) of an empty log");
    });

    check("reads back an event of every type, deep-equal and in order, with every field", async ({ log }) => {
      const events = eventsOfEveryType(1);
      await log.publish(events.slice(0, 5));
      strictEqual(await log.lastSequence(), 5, "lastSequence() after the first publish resolved");
      await log.publish(events.slice(5));
      await assertHolds(log, events, "events of every type");
      assertSame(await collect(log.read(6, 2)), events.slice(5, 7), "read(6, 2)");
    });

    check("keeps the hash chain: the events read back verify, and hash as the ones published", async ({ log }) => {
      const events = eventsOfEveryType(1);
      await log.publish(events);
      const verifier = new EventChainVerifier();
      for (const event of await collect(log.read(1))) verifier.push(event);
      const divergence = verifier.finish();
      strictEqual(divergence, undefined, `the stream read back diverges: ${JSON.stringify(divergence)}`);
      strictEqual(verifier.lastSequence, events.length, "every event verified");
      strictEqual(verifier.lastHash, hashReplicationEvent(events.at(-1)!), "the last event hashes as published");
    });

    check(`round-trips an event with a ${largeBytes}-byte body between small ones`, async ({ log }) => {
      const large: ResourceLeaseReplicationEvent = {
        ...small(2),
        eventType: "Enqueue",
        item: {
          payload: {
            resourceType: "blob",
            resourceId: "large",
            partitionKey: "p",
            payloadEncoding: "application/octet-stream",
            body: patternBytes(largeBytes),
          },
          sequenceId: 1,
          attempt: 1,
          enqueuedAt: Date.UTC(2026, 0, 1),
        },
      };
      await log.publish([small(1)]);
      await log.publish([large]);
      await log.publish([small(3)]);
      await assertHolds(log, [small(1), large, small(3)], "a large event between small ones");
      assertSame(await collect(log.read(2, 1)), [large], "read(2, 1)");
    });

    check("read(from, limit) returns exactly the requested range, across pages", async ({ log }) => {
      const events = range(1, 1100);
      for (let start = 0; start < events.length; start += 100) await log.publish(events.slice(start, start + 100));
      strictEqual(await log.lastSequence(), 1100, "lastSequence()");
      const span = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
      assertSame(await numbers(log, 1), span(1, 1100), "read(1)");
      assertSame(await numbers(log, 0), span(1, 1100), "read(0)");
      assertSame(await numbers(log, 600), span(600, 1100), "read(600)");
      assertSame(await numbers(log, 450, 600), span(450, 1049), "read(450, 600)");
      assertSame(await numbers(log, 4, 3), [4, 5, 6], "read(4, 3)");
      assertSame(await numbers(log, 1, 1), [1], "read(1, 1)");
      assertSame(await numbers(log, 1, 0), [], "read(1, 0)");
      assertSame(await numbers(log, 1100), [1100], "read(1100)");
      assertSame(await numbers(log, 1100, 5), [1100], "read(1100, 5)");
      assertSame(await numbers(log, 1101), [], "read(1101)");
      assertSame(await numbers(log, 5000, 10), [], "read(5000, 10)");
      assertSame(await collect(log.read(777, 2)), [small(777), small(778)], "read(777, 2)");
    });

    check("refuses a negative or fractional limit with invalid-argument", async ({ log }) => {
      await log.publish(range(1, 3));
      for (const limit of [-1, 1.5]) {
        const what = `read(1, ${limit})`;
        assertOmniError(await rejectionOf(() => collect(log.read(1, limit)), what), "invalid-argument", what);
      }
    });

    check("an empty publish resolves and changes nothing", async ({ log }) => {
      await log.publish([]);
      await assertHolds(log, [], "after an empty publish on an empty log");
      await log.publish(range(1, 2));
      await log.publish([]);
      await log.publish(range(3, 3));
      await assertHolds(log, range(1, 3), "after empty publishes between others");
    });

    check("refuses a batch that repeats a sequence number, storing none of it", (subject) =>
      refusedWhole(subject, { base: range(1, 3), bad: [small(4), small(5), small(5)] }, "publish [4, 5, 5] after 1..3"),
    );

    check("refuses a batch that steps back, storing none of it", (subject) =>
      refusedWhole(
        subject,
        { base: range(1, 3), bad: [small(4), small(5), small(3, "b")] },
        "publish [4, 5, 3] after 1..3",
      ),
    );

    check("refuses a batch at or below lastSequence, storing none of it", (subject) =>
      refusedWhole(subject, { base: range(1, 3), bad: [small(3, "b"), small(4, "b")] }, "publish [3, 4] after 1..3"),
    );

    check(`a gap after the last stored event is ${gaps}`, (subject) =>
      gapped(subject, { base: range(1, 2), batch: [small(4), small(5)], prefix: 0 }, "publish [4, 5] after 1..2"),
    );

    check(`a gap inside a batch is ${gaps}`, (subject) =>
      gapped(
        subject,
        { base: range(1, 2), batch: [small(3), small(4), small(6)], prefix: 2 },
        "publish [3, 4, 6] after 1..2",
      ),
    );

    if (gaps === "kept") {
      check("with gaps kept, read(from) starts at the first stored number >= from", async ({ log }) => {
        await log.publish([small(2), small(5)]);
        await log.publish([small(9)]);
        assertSame(await numbers(log, 1), [2, 5, 9], "read(1)");
        assertSame(await numbers(log, 3), [5, 9], "read(3)");
        assertSame(await numbers(log, 6, 1), [9], "read(6, 1)");
        strictEqual(await log.lastSequence(), 9, "lastSequence()");
      });
    }

    check("stores concurrent publishes in call order", async ({ log }) => {
      const publishes: Promise<void>[] = [];
      for (let batch = 0; batch < 20; batch++) publishes.push(log.publish(range(batch * 5 + 1, batch * 5 + 5)));
      await Promise.all(publishes);
      await assertHolds(log, range(1, 100), "after 20 concurrent publishes");
    });

    check("refuses a publish whose signal is aborted with cancelled, storing nothing", async ({ log }) => {
      await log.publish(range(1, 2));
      const error = await rejectionOf(log.publish(range(3, 4), { signal: AbortSignal.abort() }), "aborted publish");
      assertOmniError(
        error,
        { status: "cancelled", code: ErrorCodes.resourceLease.cancelled },
        "a publish with an aborted signal",
      );
      await assertHolds(log, range(1, 2), "after the cancelled publish");
      await log.publish(range(3, 4));
      await assertHolds(log, range(1, 4), "after publishing the cancelled events again");
    });

    if (!reopenStorage) return;

    check("reopens with every event and lastSequence kept, and continues after them", async (subject) => {
      const events = eventsOfEveryType(1);
      await subject.log.publish(events);
      const reopened = await subject.reopen!();
      await assertHolds(reopened, events, "after a reopen");
      const next = range(events.length + 1, events.length + 3);
      await reopened.publish(next);
      await assertHolds(reopened, [...events, ...next], "after publishing on the reopened log");
      await assertHolds(await subject.reopen!(), [...events, ...next], "after a second reopen");
    });

    check("never lets a reopened log take a stored sequence number again", async (subject) => {
      await subject.log.publish(range(1, 3));
      const reopened = await subject.reopen!();
      // From the start (a producer that began again at 1), then just below the end: neither may replace history.
      for (const [index, stale] of [range(1, 2, "stale"), range(3, 3, "stale")].entries()) {
        const publish = reopened.publish(stale);
        publish.catch(() => undefined);
        const what = `publish [${numbersOf(stale).join(", ")}] (changed) after a reopen of 1..3`;
        if (gaps !== "withheld" && index === 0) {
          assertOmniError(await rejectionOf(publish, what), "failed-precondition", what);
        } else if ((await settledWithin(publish, waitMs)) === "resolved") {
          throw new AssertionError({ message: `${what}: it resolved` });
        }
        await assertHolds(reopened, range(1, 3), `${what}: history unchanged`);
      }
      await assertHolds(await subject.reopen!(), range(1, 3), "history unchanged after another reopen");
    });
  });
}
