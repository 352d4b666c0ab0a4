import type { Cron } from "croner";

// When a cron schedule's slots are, in its time zone. The expression is matched against the zone's local wall clock
// (croner at UTC offset 0, over wall times written as if they were UTC instants), and each matching local time becomes
// an instant by one of two daylight-saving rules:
// - an expression whose hour field is a wildcard (`*`, `*/2`, `@hourly`) follows real time: it fires at every instant
//   whose local time matches, so an hour the clocks repeat fires twice and an hour they skip does not fire;
// - any other expression names its local hours: each matching local time fires once, at its first occurrence, and a
//   local time a spring-forward skips fires at the first instant after the gap (all of a gap's times fire once there).
// Either way a schedule's slots are strictly increasing instants: a slot never comes twice. Internal.

/** A schedule's slots: its expression over wall time (compiled with `utcOffset: 0`), its zone and its DST rule. */
export interface SlotRule {
  readonly wall: Cron;
  readonly zone: string;
  /** The hour field is a wildcard: the schedule follows real time (see above). */
  readonly realTime: boolean;
}

/** Whether a cron expression's hour field is a wildcard: `*` or `?`, alone, in a step or in a list; or `@hourly`. */
export function hourIsWildcard(cron: string): boolean {
  const text = cron.trim();
  if (text.startsWith("@")) return text.toLowerCase() === "@hourly"; // croner's other nicknames are at hour 0
  const fields = text.split(/\s+/);
  return /[*?]/.test(fields[fields.length === 6 ? 2 : 1] ?? "");
}

const DAY_MS = 86_400_000;
/** A zone's offsets are sampled this often to find its changes (since 1970 no zone changed twice within a week). */
const SAMPLE_MS = DAY_MS / 2;
/** A change this long ago no longer matters to the wall times after it (offsets change by less than a day). */
const REACH_MS = DAY_MS;
/** Instants outside these years take the offsets at the nearer edge (croner's wall times end in 9999). */
const FIRST_YEAR = 1900;
const LAST_YEAR = 9999;

/** A change of a zone's offset (ms east of UTC): from `previous` to `offset` at the instant `at`. */
interface Change {
  readonly at: number;
  readonly offset: number;
  readonly previous: number;
}

/** A stretch of time with one offset, from the instant `from` (or as far back as looked), and the offset before it. */
interface Regime {
  readonly from: number;
  readonly offset: number;
  readonly previous: number;
}

function yearOf(t: number): number {
  const year = new Date(Math.min(Math.max(t, -8.64e15), 8.64e15)).getUTCFullYear();
  return Math.min(Math.max(year, FIRST_YEAR), LAST_YEAR);
}

/** A zone's offset changes, found by sampling its offsets a year at a time (then kept: they never change). */
class ZoneOffsets {
  private readonly years = new Map<number, { readonly before: number; readonly changes: readonly Change[] }>();

  /** @param format - formats in the zone; undefined for UTC. */
  constructor(private readonly format: Intl.DateTimeFormat | undefined) {}

  offsetAt(t: number): number {
    const { before, changes } = this.year(yearOf(t));
    let offset = before;
    for (const c of changes) {
      if (c.at > t) break;
      offset = c.offset;
    }
    return offset;
  }

  /** The last change after `floor` and at or before `t`. */
  lastChange(t: number, floor: number): Change | undefined {
    for (let y = yearOf(t); y >= yearOf(floor); y--) {
      const { changes } = this.year(y);
      for (let i = changes.length - 1; i >= 0; i--) {
        const c = changes[i]!;
        if (c.at <= t) return c.at > floor ? c : undefined;
      }
    }
    return undefined;
  }

  /** The first change after `t` and at or before `limit`. */
  nextChange(t: number, limit: number): Change | undefined {
    for (let y = yearOf(t); y <= yearOf(limit); y++) {
      for (const c of this.year(y).changes) if (c.at > t) return c.at <= limit ? c : undefined;
    }
    return undefined;
  }

  /** The year's offset just before it starts and its changes (at whole seconds, as in the tz database). */
  private year(year: number) {
    let table = this.years.get(year);
    if (table) return table;
    const start = Date.UTC(year, 0, 1);
    const last = Date.UTC(year + 1, 0, 1) - 1000;
    const changes: Change[] = [];
    const before = this.probe(start - 1000);
    let [lo, current] = [start - 1000, before];
    for (let hi = start; this.format; hi = Math.min(hi + SAMPLE_MS, last)) {
      const offset = this.probe(hi);
      if (offset !== current) {
        changes.push({ at: this.pinpoint(lo, hi), offset, previous: current });
        current = offset;
      }
      if (hi === last) break;
      lo = hi;
    }
    table = { before, changes };
    this.years.set(year, table);
    return table;
  }

  /** The first whole second in (lo, hi] with the offset of `hi` (one change between them). */
  private pinpoint(lo: number, hi: number): number {
    const old = this.probe(lo);
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (this.probe(mid) === old) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /** The offset at the whole second `t`: its wall time in the zone, read as UTC, minus `t`. */
  private probe(t: number): number {
    if (!this.format) return 0;
    const f: Record<string, number> = {};
    for (const part of this.format.formatToParts(t)) f[part.type] = Number(part.value);
    return Date.UTC(f.year!, f.month! - 1, f.day, f.hour, f.minute, f.second) - t;
  }
}

/** Offsets by canonical zone, and by the names schedules spell them with (aliases, any case; bounded). */
const BY_ZONE = new Map<string, ZoneOffsets>();
const BY_NAME = new Map<string, ZoneOffsets>();

function zoneOffsets(name: string): ZoneOffsets {
  let offsets = BY_NAME.get(name);
  if (!offsets) {
    const options = { timeZone: name, hourCycle: "h23" as const };
    const parts = { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" } as const;
    const format = new Intl.DateTimeFormat("en-US", { ...options, ...parts, second: "numeric" });
    const zone = format.resolvedOptions().timeZone;
    offsets = BY_ZONE.get(zone) ?? new ZoneOffsets(zone === "UTC" ? undefined : format);
    BY_ZONE.set(zone, offsets);
    if (BY_NAME.size >= 4096) BY_NAME.clear();
    BY_NAME.set(name, offsets);
  }
  return offsets;
}

/** The stretch of one offset that holds `t`; its start is found only after `floor`. */
function regimeAt(zone: ZoneOffsets, t: number, floor: number): Regime {
  const change = zone.lastChange(t, floor);
  if (change) return { from: change.at, offset: change.offset, previous: change.previous };
  const offset = zone.offsetAt(t);
  return { from: Number.NEGATIVE_INFINITY, offset, previous: offset };
}

/** The first wall time after `wall`. */
function nextWall(rule: SlotRule, wall: number): number | undefined {
  return rule.wall.nextRun(new Date(wall))?.getTime();
}

/** Whether a named-hour rule fires at the start of `regime`: a spring-forward there skipped a matching local time. */
function firesAfterGap(rule: SlotRule, regime: Regime): boolean {
  if (rule.realTime || regime.previous >= regime.offset) return false;
  const skipped = nextWall(rule, regime.from + regime.previous - 1);
  return skipped !== undefined && skipped < regime.from + regime.offset;
}

/** The first wall time that may fire in `regime` at or after the instant `at` (a named-hour rule skips repeats). */
function lowestWall(rule: SlotRule, regime: Regime, at: number): number {
  const wall = at + regime.offset;
  return rule.realTime ? wall : Math.max(wall, regime.from + regime.previous);
}

/** The first slot after `after`, or undefined when there is none. */
export function nextSlotAt(rule: SlotRule, after: number): number | undefined {
  const zone = zoneOffsets(rule.zone);
  let found: { lo: number; wall: number | undefined } | undefined; // no wall time from `lo` up to `wall`
  for (let at = after + 1; ; ) {
    const regime = regimeAt(zone, at, at - REACH_MS);
    if (regime.from === at && firesAfterGap(rule, regime)) return at;
    const lo = lowestWall(rule, regime, at);
    if (!found || lo < found.lo || (found.wall !== undefined && lo > found.wall)) {
      found = { lo, wall: nextWall(rule, lo - 1) };
    }
    const wall = found.wall;
    if (wall === undefined) return undefined;
    const slot = wall - regime.offset;
    const change = zone.nextChange(at, slot);
    if (!change) return slot;
    at = change.at; // the wall time is past the end of this offset: look from the next one
  }
}

/** Up to `max` wall times from `hi` down to `lo`, newest first. */
function wallsDown(pattern: Cron, range: { lo: number; hi: number }, max: number): number[] {
  const walls: number[] = [];
  for (let ref = range.hi + 1, batch = 8; walls.length < max; batch = Math.min(batch * 2, 256)) {
    const want = Math.min(batch, max - walls.length);
    const runs = pattern.previousRuns(want, new Date(ref));
    for (const run of runs) {
      const wall = run.getTime();
      if (wall < range.lo) return walls;
      walls.push(wall);
    }
    if (runs.length < want) break;
    ref = walls.at(-1)!;
  }
  return walls;
}

/** The most recent slots after `after` and at or before `now`, at most `max`, oldest first. */
export function lastSlots(rule: SlotRule, window: { after: number; now: number }, max: number): number[] {
  const zone = zoneOffsets(rule.zone);
  const { after, now } = window;
  const slots: number[] = []; // newest first
  for (let end = now; end > after && slots.length < max; ) {
    const regime = regimeAt(zone, end, after - REACH_MS);
    const range = { lo: lowestWall(rule, regime, Math.max(regime.from, after + 1)), hi: end + regime.offset };
    const walls = range.lo <= range.hi ? wallsDown(rule.wall, range, max - slots.length) : [];
    for (const wall of walls) slots.push(wall - regime.offset);
    if (regime.from <= after) break;
    if (slots.length < max && slots.at(-1) !== regime.from && firesAfterGap(rule, regime)) slots.push(regime.from);
    end = regime.from - 1;
  }
  return slots.reverse();
}
