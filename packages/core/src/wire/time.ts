// ISO-8601 times on the wire and in logs: written as `Date.prototype.toISOString` writes them, read strictly.

const isoPattern = /^(\d{4}|[+-]\d{6})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

const digit = (s: string, i: number): number => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : Number.NaN;
};

/**
 * `YYYY-MM-DDTHH:MM:SS.mmmZ` (exactly what `toISOString` writes for years 100–9999) → ms, or NaN for anything else,
 * including impossible dates such as 2025-02-30. No regular expression, no Date object: a restart decodes two of these
 * per stored event.
 */
function parseCanonicalUtc(s: string): number {
  if (
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 || // T
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 || // .
    s.charCodeAt(23) !== 90 // Z
  ) {
    return Number.NaN;
  }
  const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3);
  const month = digit(s, 5) * 10 + digit(s, 6);
  const day = digit(s, 8) * 10 + digit(s, 9);
  const hour = digit(s, 11) * 10 + digit(s, 12);
  const minute = digit(s, 14) * 10 + digit(s, 15);
  const second = digit(s, 17) * 10 + digit(s, 18);
  const milli = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22);
  // NaN (a non-digit) fails every comparison below. Date.UTC maps years 0–99 to 1900–1999: leave those to Date.parse.
  if (!(year >= 100 && month >= 1 && month <= 12 && day >= 1 && hour < 24 && minute < 60 && second < 60)) {
    return Number.NaN;
  }
  if (!(milli >= 0)) return Number.NaN;
  if (day > daysIn(year, month)) return Number.NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, milli);
}

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month === 2) return leap ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * ISO-8601 with a zone (`…Z` or `…+01:00`) → ms since the epoch (sub-millisecond digits truncated), or NaN for
 * anything else: no bare numbers, no month names, no date without a time and zone, no 2025-02-30. A year is four
 * digits or, as `toISOString` writes years before 0 and after 9999, six with a sign (`+010000-01-01T00:00:00.000Z`):
 * every time {@link encodeTime} writes reads back.
 */
export function parseTime(value: unknown): number {
  if (typeof value !== "string") return Number.NaN;
  // Fast path for what encodeTime writes (every stored event); anything else takes the general path below.
  if (value.length === 24) {
    const ms = parseCanonicalUtc(value);
    if (!Number.isNaN(ms)) return ms;
  }
  const trimmed = value.trim();
  const match = isoPattern.exec(trimmed);
  if (!match) return Number.NaN;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.parse rolls 2025-02-30 over to March 2; a stored log must not be reinterpreted like that.
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return Number.NaN;
  return Date.parse(trimmed);
}

// Times written together mostly repeat a few values (a batch of 1,000 grants: each item's enqueue time, shared by the
// batch that enqueued it, and one lease expiry), and toISOString costs about a microsecond: remember the last four. A
// pure cache of a pure function, so sharing it is harmless.
const CACHED = 4;
const cachedMs = new Float64Array(CACHED).fill(Number.NaN);
const cachedIso: string[] = new Array(CACHED).fill("");
let nextSlot = 0;

/** Milliseconds since the epoch → ISO-8601 UTC (`2026-01-01T00:00:00.000Z`). */
export function encodeTime(ms: number): string {
  for (let i = 0; i < CACHED; i++) if (cachedMs[i] === ms) return cachedIso[i]!;
  const iso = new Date(ms).toISOString();
  cachedMs[nextSlot] = ms;
  cachedIso[nextSlot] = iso;
  nextSlot = (nextSlot + 1) % CACHED;
  return iso;
}
