import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { FakeClock } from "../testing/fake-clock.js";
import { ResourceLeaseQueue } from "./queue.js";
import { compileCron, dueSlots, nextSlot, SCHEDULE_MAX_BACKFILL, type ScheduleRecord } from "./schedules.js";
import { item } from "./test-helpers.js";

// Cron schedules across daylight-saving changes (docs/queue-semantics.md, "Cron schedules"): an expression with a
// wildcard hour field follows real time (a repeated hour fires twice, a skipped hour not at all); any other expression
// fires each matching local time once — at its first occurrence, or at the first instant after a spring-forward gap.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** ISO instants from "MM-DDTHH:MM" (UTC, 2026). */
const utc = (...times: string[]) => times.map((t) => new Date(`2026-${t}:00Z`).toISOString());

interface Case {
  readonly title: string;
  readonly zone: string;
  /** The schedule is set at `from`; the clock runs (or the queue is down) until `to`. */
  readonly from: number;
  readonly to: number;
  /** The local day of the change, as instants [start, end), and its length in hours. */
  readonly day: readonly [string, string, number];
  /** Expected slots (UTC) of each expression with named hours. */
  readonly named: Readonly<Record<string, readonly string[]>>;
}

const CASES: readonly Case[] = [
  {
    title: "Europe/Berlin, spring forward on 29 March 2026 (02:00 CET -> 03:00 CEST)",
    zone: "Europe/Berlin",
    from: Date.UTC(2026, 2, 27, 12),
    to: Date.UTC(2026, 2, 30, 12),
    day: ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z", 23],
    named: {
      // 02:00 and 02:30 do not exist on the 29th: both fire once, at 03:00 CEST (01:00Z).
      "0,30 2 * * *": utc("03-28T01:00", "03-28T01:30", "03-29T01:00", "03-30T00:00", "03-30T00:30"),
      "*/20 2 * * *": utc(
        "03-28T01:00",
        "03-28T01:20",
        "03-28T01:40",
        "03-29T01:00",
        ...["00:00", "00:20", "00:40"].map((t) => `03-30T${t}`),
      ),
      "0 */15 2 * * *": utc(
        ...["01:00", "01:15", "01:30", "01:45"].map((t) => `03-28T${t}`),
        "03-29T01:00",
        ...["00:00", "00:15", "00:30", "00:45"].map((t) => `03-30T${t}`),
      ),
      "30 2 * * *": utc("03-28T01:30", "03-29T01:00", "03-30T00:30"),
    },
  },
  {
    title: "Europe/Berlin, fall back on 25 October 2026 (03:00 CEST -> 02:00 CET)",
    zone: "Europe/Berlin",
    from: Date.UTC(2026, 9, 23, 12),
    to: Date.UTC(2026, 9, 26, 12),
    day: ["2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z", 25],
    named: {
      // 02:00-02:59 happen twice on the 25th (00:00Z-00:59Z CEST, 01:00Z-01:59Z CET): each fires the first time only.
      "0,30 2 * * *": utc("10-24T00:00", "10-24T00:30", "10-25T00:00", "10-25T00:30", "10-26T01:00", "10-26T01:30"),
      "*/20 2 * * *": utc(
        ...["24T00:00", "24T00:20", "24T00:40", "25T00:00", "25T00:20", "25T00:40"].map((t) => `10-${t}`),
        ...["10-26T01:00", "10-26T01:20", "10-26T01:40"],
      ),
      "0 */15 2 * * *": utc(
        ...["24", "25"].flatMap((d) => ["00:00", "00:15", "00:30", "00:45"].map((t) => `10-${d}T${t}`)),
        ...["01:00", "01:15", "01:30", "01:45"].map((t) => `10-26T${t}`),
      ),
      "30 2 * * *": utc("10-24T00:30", "10-25T00:30", "10-26T01:30"),
    },
  },
  {
    title: "America/New_York, spring forward on 8 March 2026 (02:00 EST -> 03:00 EDT)",
    zone: "America/New_York",
    from: Date.UTC(2026, 2, 6, 17),
    to: Date.UTC(2026, 2, 9, 16),
    day: ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z", 23],
    named: {
      "0,30 2 * * *": utc("03-07T07:00", "03-07T07:30", "03-08T07:00", "03-09T06:00", "03-09T06:30"),
      "*/20 2 * * *": utc(
        "03-07T07:00",
        "03-07T07:20",
        "03-07T07:40",
        "03-08T07:00",
        ...["00", "20", "40"].map((m) => `03-09T06:${m}`),
      ),
      "0 */15 2 * * *": utc(
        ...["00", "15", "30", "45"].map((m) => `03-07T07:${m}`),
        "03-08T07:00",
        ...["00", "15", "30", "45"].map((m) => `03-09T06:${m}`),
      ),
      "30 2 * * *": utc("03-07T07:30", "03-08T07:00", "03-09T06:30"),
    },
  },
  {
    title: "America/New_York, fall back on 1 November 2026 (02:00 EDT -> 01:00 EST; 01:00-01:59 twice)",
    zone: "America/New_York",
    from: Date.UTC(2026, 9, 30, 16),
    to: Date.UTC(2026, 10, 2, 17),
    day: ["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z", 25],
    named: {
      "0,30 1 * * *": utc("10-31T05:00", "10-31T05:30", "11-01T05:00", "11-01T05:30", "11-02T06:00", "11-02T06:30"),
      "*/20 1 * * *": utc(
        ...["10-31", "11-01"].flatMap((d) => ["00", "20", "40"].map((m) => `${d}T05:${m}`)),
        ...["00", "20", "40"].map((m) => `11-02T06:${m}`),
      ),
      "0 */15 1 * * *": utc(
        ...["10-31", "11-01"].flatMap((d) => ["00", "15", "30", "45"].map((m) => `${d}T05:${m}`)),
        ...["00", "15", "30", "45"].map((m) => `11-02T06:${m}`),
      ),
      "30 1 * * *": utc("10-31T05:30", "11-01T05:30", "11-02T06:30"),
      // The hour after the repeated one is not repeated: once a day.
      "0,30 2 * * *": utc("10-31T06:00", "10-31T06:30", "11-01T07:00", "11-01T07:30", "11-02T07:00", "11-02T07:30"),
    },
  },
];

/** Every whole UTC hour after `from` up to `to`: the slots of `0 * * * *` in a zone whose offsets are whole hours. */
function everyHour(from: number, to: number): string[] {
  const hours: string[] = [];
  for (let t = Math.floor(from / HOUR) * HOUR + HOUR; t <= to; t += HOUR) hours.push(new Date(t).toISOString());
  return hours;
}

/** The slots (ISO) schedule `s` fired, in order, from the request ids. */
function fired(events: readonly ResourceLeaseReplicationEvent[]): string[] {
  return events
    .filter((e) => e.eventType === "Enqueue" && e.metadata["schedule.id"] === "s")
    .map((e) => e.item!.payload.requestId!.slice("schedule:s:".length));
}

/** What a queue running from `from` to `to` fires (the clock steps through each slot, as a live timer does). */
async function live(cron: string, c: Case): Promise<string[]> {
  const clock = new FakeClock(c.from);
  const events: ResourceLeaseReplicationEvent[] = [];
  const queue = new ResourceLeaseQueue({ clock, capacity: 10_000, observers: [(e) => events.push(e)] });
  await queue.schedules.set({ id: "s", cron, timezone: c.zone, payload: item(1) });
  clock.set(c.to);
  await queue.close();
  return fired(events);
}

/** What a queue that set the schedule at `from` and was down until `to` fires on its restart (`backfill: "all"`). */
async function backfilled(cron: string, c: Case): Promise<string[]> {
  const clock = new FakeClock(c.from);
  const log: ResourceLeaseReplicationEvent[] = [];
  const replicator = {
    async publish(batch: readonly ResourceLeaseReplicationEvent[]) {
      log.push(...structuredClone(batch));
    },
  };
  const before = new ResourceLeaseQueue({ clock, replicator, capacity: 10_000 });
  await before.schedules.set({
    id: "s",
    cron,
    timezone: c.zone,
    payload: item(1),
    backfill: "all",
    backfillWindowMs: 7 * DAY,
  });
  await before.close();
  clock.set(c.to);
  const after = await ResourceLeaseQueue.rebuild(structuredClone(log), { clock, replicator, capacity: 10_000 });
  clock.advance(0);
  await after.close();
  return fired(log);
}

describe.each(CASES)("cron schedules: $title", (c) => {
  const onDay = (slots: string[]) => slots.filter((s) => s >= c.day[0] && s < c.day[1]);

  it("live: named hours fire each local time once; a wildcard hour fires every real hour", async () => {
    for (const [cron, expected] of Object.entries(c.named)) expect(await live(cron, c), cron).toEqual(expected);
    const hourly = await live("0 * * * *", c);
    expect(hourly).toEqual(everyHour(c.from, c.to));
    expect(onDay(hourly)).toHaveLength(c.day[2]);
  });

  it("a restart's backfill (all) fires the same slots as the live queue", async () => {
    for (const [cron, expected] of Object.entries(c.named)) expect(await backfilled(cron, c), cron).toEqual(expected);
    expect(await backfilled("0 * * * *", c)).toEqual(everyHour(c.from, c.to));
  });
});

// A reference that knows nothing of offset tables: it walks the zone's clock minute by minute with Intl.
const ZONES = [
  "Europe/Berlin",
  "America/New_York",
  "Australia/Lord_Howe", // half-hour daylight saving
  "Pacific/Chatham", // +12:45 / +13:45
  "America/Santiago", // changes at midnight
  "America/Havana", // changes at midnight (forward) and 01:00 (back)
  "Antarctica/Troll", // two hours at once
  "Africa/Casablanca", // a month without daylight saving for Ramadan
  "America/St_Johns",
  "Asia/Kolkata", // none
] as const;
/** Expressions with a wildcard hour (real time), then expressions that name their hours. */
const REAL_TIME = ["0 * * * *", "*/20 * * * *", "30 * * * *", "0 */2 * * *", "@hourly"];
const NAMED = ["0,30 2 * * *", "*/20 2 * * *", "0 */15 2 * * *", "30 2 * * *", "0 0 * * *", "@daily"];
const EXPRESSIONS = [...REAL_TIME, ...NAMED, "30 0,1,2,3 * * *", "0 23,0 * * *", "15 1-3 * * *", "*/30 0-2 * * *"];
const MINUTE = 60_000;

function wallClock(zone: string): (t: number) => number {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    ...{ year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" },
  });
  return (t) => {
    const f: Record<string, number> = {};
    for (const p of format.formatToParts(t)) f[p.type] = Number(p.value);
    return Date.UTC(f.year!, f.month! - 1, f.day, f.hour, f.minute, f.second);
  };
}

/** The instants in 2026 around which `zone` changes its offset (to the hour). */
function changesIn2026(zone: string): number[] {
  const wall = wallClock(zone);
  const changes: number[] = [];
  for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += HOUR) {
    if (wall(t + HOUR) - (t + HOUR) !== wall(t) - t) changes.push(t);
  }
  return changes;
}

/** The slots in (after, now], minute by minute: the rule from the docs, applied to the zone's clock. */
function referenceSlots(cron: string, zone: string, window: { after: number; now: number }): number[] {
  const pattern = compileCron(cron, zone);
  const named = !REAL_TIME.includes(cron);
  const wall = wallClock(zone);
  const slots: number[] = [];
  let shown = wall(window.after); // the latest local time the clock has shown
  for (let t = window.after - 3 * HOUR; t < window.after; t += MINUTE) shown = Math.max(shown, wall(t));
  for (let t = window.after + MINUTE; t <= window.now; t += MINUTE) {
    const w = wall(t);
    // Named hours: every local time the clock passed since the last minute (skipped ones too), once; else real time.
    const next = pattern.nextRun(new Date(named ? shown : w - 1))?.getTime();
    if (next !== undefined && (named ? next <= w : next === w)) slots.push(t);
    shown = Math.max(shown, w);
  }
  return slots;
}

function record(cron: string, zone: string, firedThrough: number): ScheduleRecord {
  const definition = {
    id: "s",
    cron,
    timezone: zone,
    payload: item(1),
    backfill: "all" as const,
    backfillWindowMs: 7 * DAY,
  };
  const pattern = compileCron(cron, zone);
  return { definition, pattern, upsertedAt: firedThrough, firedThrough, lastSlotAt: undefined, nextAt: undefined };
}

describe("cron schedules across daylight-saving changes (any zone, any expression)", () => {
  it("live slots, a restart's backfill and the documented rule agree; slots strictly increase", () => {
    const cases = fc.record({
      zone: fc.constantFrom(...ZONES.filter((z) => z !== "Asia/Kolkata")),
      cron: fc.constantFrom(...EXPRESSIONS),
      pick: fc.nat(),
      shift: fc.integer({ min: -36 * 60, max: 12 * 60 }),
      minutes: fc.integer({ min: 1, max: 48 * 60 }),
    });
    const changes = new Map(ZONES.map((z) => [z, changesIn2026(z)]));
    fc.assert(
      fc.property(cases, ({ zone, cron, pick, shift, minutes }) => {
        const near = changes.get(zone)!;
        const after = near[pick % near.length]! + shift * MINUTE;
        const now = after + minutes * MINUTE;
        const expected = referenceSlots(cron, zone, { after, now });
        const r = record(cron, zone, after);
        const stepped: number[] = [];
        for (let at = nextSlot(r, after); at !== undefined && at <= now; at = nextSlot(r, at)) stepped.push(at);
        expect(stepped, `${cron} ${zone} ${new Date(after).toISOString()}`).toEqual(expected);
        expect(dueSlots(r, now)).toEqual(expected.slice(-SCHEDULE_MAX_BACKFILL));
        expect(dueSlots({ ...r, definition: { ...r.definition, backfill: "latest" } }, now)).toEqual(
          expected.slice(-1),
        );
      }),
      { numRuns: 60 },
    );
  });
});
