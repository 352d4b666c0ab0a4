import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/**
 * The furthest ahead a call's deadline may lie: 24 days. A later deadline (an absurd `Rpc-Ttl-Ms`, the year 9999)
 * is not an error; it is treated as this far away. Node timers cannot wait longer than about 24.8 days.
 */
export const maxDeadlineHorizonMs = 24 * 24 * 60 * 60 * 1000;

// RFC 3339 `date-time`: full date, `T`, full time with optional fraction, and a zone (`Z` or `±hh:mm`).
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time with a zone (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00.250+01:00`) to ms since
 * the epoch. Nothing looser: no bare numbers, no dates without a time or zone, no month names. A leap second
 * (`:60`) is read as the next second; fractions finer than a millisecond are truncated.
 * @returns `undefined` when the text is not that shape or names a day or time that does not exist.
 */
export function parseRfc3339DateTime(text: string): number | undefined {
  const m = rfc3339.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = [31, isLeap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12 || day < 1 || day > (monthDays[month - 1] ?? 0)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const millis = m[7] === undefined ? 0 : Number(m[7].padEnd(3, "0").slice(0, 3));
  // Date.UTC maps years 0-99 to 1900-1999; set the full year explicitly.
  const date = new Date(Date.UTC(2000, 0, 1));
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  return date.getTime() - offsetMinutes * 60_000;
}

/** Options of {@link readRequestDeadline}. */
export interface RequestDeadlineOptions {
  /** The current time, ms since the epoch, from the inbound's clock. */
  readonly now: number;
  /** A deadline the transport itself carries (the gRPC deadline), ms since the epoch. @defaultValue none */
  readonly transportDeadline?: number;
}

/**
 * The deadline of an incoming call, from its `rpc-ttl-ms` (whole milliseconds from now; `0` means already expired)
 * and `rpc-deadline` (an RFC 3339 date-time with a zone) headers and the transport's own deadline: the earliest of
 * those present, no further than {@link maxDeadlineHorizonMs} from `now`. A deadline that has already passed is
 * returned as it is; refusing the call is the caller's job (see `DeadlineMiddleware`).
 * @param headers - request headers or gRPC metadata, keys lower-cased.
 * @returns ms since the epoch, or `undefined` when the call carries no deadline.
 * @throws OmniRelayError invalid-argument `omnirelay.request.invalid_header` (metadata `header`) for a malformed
 * `rpc-ttl-ms` or `rpc-deadline`.
 */
export function readRequestDeadline(
  headers: Readonly<Record<string, string | undefined>>,
  options: RequestDeadlineOptions,
): number | undefined {
  const { now } = options;
  let deadline = finite(options.transportDeadline);
  const ttl = headers["rpc-ttl-ms"];
  if (ttl !== undefined) {
    const text = ttl.trim();
    if (!/^\d+$/.test(text)) {
      throw invalidHeader("rpc-ttl-ms", "Rpc-Ttl-Ms must be a whole number of milliseconds (0 or more).");
    }
    deadline = earliest(deadline, now + Math.min(Number(text), maxDeadlineHorizonMs));
  }
  const at = headers["rpc-deadline"];
  if (at !== undefined) {
    const parsed = parseRfc3339DateTime(at);
    if (parsed === undefined) {
      throw invalidHeader(
        "rpc-deadline",
        "Rpc-Deadline must be an RFC 3339 date-time with a zone, e.g. 2026-01-01T00:00:00Z.",
      );
    }
    deadline = earliest(deadline, parsed);
  }
  return deadline === undefined ? undefined : Math.min(deadline, now + maxDeadlineHorizonMs);
}

function finite(value: number | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function earliest(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

function invalidHeader(header: string, message: string): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.rpc.requestInvalidHeader,
    message,
    metadata: { header },
  });
}
