import { ErrorCodes } from "../errors/codes.js";
import { heldBytes } from "../util/slab.js";
import { ResourceLeaseLimits as Limits } from "./limits.js";
import { child, fail, type Site } from "./site.js";
import { parseTime } from "./time.js";

// The one family of value readers. Each takes a value as it arrives — parsed JSON (base64 text, ISO-8601 text,
// decimal-string integers) or an already typed value (a protobuf message, an in-process call) — checks it at a site,
// and returns the domain value. `undefined` and `null` are "absent" everywhere (JSON writers omit nulls).

/** True when a value is absent: `undefined` or `null`. */
export function absent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/** Whether `s` is well-formed Unicode (no lone surrogate). Internal. */
export const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Options of {@link text}. */
export interface TextRules {
  /** Most UTF-16 code units (request mode). */
  readonly max: number;
  /** Code when absent or blank; the field is then required and may not be blank. */
  readonly required?: string;
  /** Code of a wrong type or a broken limit. @defaultValue `resourcelease.argument.invalid` */
  readonly code?: string;
}

/**
 * A string. Required ones must be non-blank; in request mode it must fit `max` and be well-formed Unicode (a lone
 * surrogate would become U+FFFD in protobuf, SQLite and object stores, so copies of one event would differ).
 */
export function text(value: unknown, site: Site, rules: TextRules): string | undefined {
  const code = rules.code ?? ErrorCodes.resourceLease.argumentInvalid;
  if (absent(value)) {
    if (rules.required) fail(site, rules.required, `${site.path} is required and must be a non-blank string.`);
    return undefined;
  }
  if (typeof value !== "string") {
    fail(site, rules.required ?? code, `${site.path} must be a${rules.required ? " non-blank" : ""} string.`);
  }
  if (rules.required && value.trim().length === 0) {
    fail(site, rules.required, `${site.path} is required and must be a non-blank string.`);
  }
  if (site.mode === "request") checkText(value, site, { max: rules.max, code });
  return value;
}

/** A string's request-mode limits: at most `max` code units, well-formed. `label` names it in messages (a map key). */
function checkText(value: string, site: Site, rules: { max: number; code: string; label?: () => string }): void {
  const { max, code } = rules;
  const label = () => rules.label?.() ?? site.path;
  if (value.length > max) fail(site, code, { message: `${label()} is longer than ${max} characters.`, limit: max });
  if (!wellFormed(value)) fail(site, code, `${label()} is not well-formed Unicode (a lone surrogate).`);
}

/** Options of {@link integer}. */
export interface IntegerRules {
  readonly min: number;
  /** Largest value in request mode (a log is only held to the safe-integer range). */
  readonly max?: number;
  /** Hold `max` in every mode, a log's too (a value whose range is part of its storage, such as an int32). */
  readonly everywhere?: boolean;
  /** Code when absent (the field is then required). */
  readonly required?: string;
  /** @defaultValue `resourcelease.argument.invalid` */
  readonly code?: string;
}

/** A safe integer within the rules; a decimal string (`"42"`) is read as its number. */
export function integer(value: unknown, site: Site, rules: IntegerRules): number | undefined {
  const code = rules.code ?? ErrorCodes.resourceLease.argumentInvalid;
  if (absent(value)) {
    if (rules.required) fail(site, rules.required, `${site.path} is required.`);
    return undefined;
  }
  const decimal = site.option === undefined && typeof value === "string" && /^-?\d{1,16}$/.test(value.trim());
  const n = decimal ? Number(value.trim()) : value;
  const max =
    site.mode === "request" || rules.everywhere ? (rules.max ?? Number.MAX_SAFE_INTEGER) : Number.MAX_SAFE_INTEGER;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < rules.min || n > max) {
    fail(site, rules.required ?? code, `${site.path} must be an integer ${range(rules.min, max)}, got ${shown(n)}.`);
  }
  return n;
}

/** Options of {@link finite}. */
export interface NumberRules {
  readonly min: number;
  /** @defaultValue no upper bound */
  readonly max?: number;
  /** `min` itself is refused (a rate that must be positive). */
  readonly aboveMin?: boolean;
  /** Code when absent (the value is then required). */
  readonly required?: string;
  /** @defaultValue `resourcelease.argument.invalid` */
  readonly code?: string;
}

/** A finite number within the rules (a fraction or a rate; integers use {@link integer}). */
export function finite(value: unknown, site: Site, rules: NumberRules): number | undefined {
  if (absent(value)) {
    if (rules.required) fail(site, rules.required, `${site.path} is required.`);
    return undefined;
  }
  const max = rules.max ?? Number.POSITIVE_INFINITY;
  const low = rules.aboveMin ? (value as number) <= rules.min : (value as number) < rules.min;
  if (typeof value !== "number" || !Number.isFinite(value) || low || value > max) {
    const bound = rules.aboveMin ? `> ${rules.min}` : `>= ${rules.min}`;
    const upper = max === Number.POSITIVE_INFINITY ? "" : ` and <= ${max}`;
    const code = rules.required ?? rules.code ?? ErrorCodes.resourceLease.argumentInvalid;
    fail(site, code, `${site.path} must be a finite number ${bound}${upper}, got ${shown(value)}.`);
  }
  return value;
}

function range(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
}

function shown(value: unknown): string {
  return typeof value === "string"
    ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
    : String(value);
}

/**
 * A time, ms since the epoch: ISO-8601 with a zone, or a number of ms. In request mode it must lie between
 * 1970-01-01 and 9999-12-31 (what every log can write as ISO-8601 and read back).
 */
export function time(value: unknown, site: Site, rules: { required?: string; code?: string } = {}): number | undefined {
  const code = rules.code ?? ErrorCodes.resourceLease.argumentInvalid;
  if (absent(value)) {
    if (rules.required) fail(site, rules.required, `${site.path} is required.`);
    return undefined;
  }
  const ms = typeof value === "number" && Number.isFinite(value) ? Math.trunc(value) : parseTime(value);
  if (Number.isNaN(ms)) fail(site, code, `${site.path} must be an ISO-8601 timestamp with a time zone.`);
  const [lo, hi] = site.mode === "request" ? [0, Limits.maxTimeMs] : [-8.64e15, 8.64e15];
  if (ms < lo || ms > hi) fail(site, code, `${site.path} is outside the time range a log can hold.`);
  return ms;
}

/**
 * Bytes: a `Uint8Array`, or standard base64 text. In request mode at most the site's `maxBodyBytes`
 * (`resourcelease.payload.too_large`), and the bytes are taken as a queue holds them (see `heldBytes`): a small body
 * is copied into a shared slab, a view into a larger buffer (Node's 8 KiB pool, a gRPC message) is copied, so a held
 * item never keeps unrelated memory alive (the queue compacts slabs that finished items left sparse). In log mode
 * bytes given stay as they are (a binary log row's view: a queue rebuilt from a log compacts them after) and base64
 * text is decoded into a buffer of its own.
 */
export function bytes(
  value: unknown,
  site: Site,
  code: string = ErrorCodes.resourceLease.argumentInvalid,
): Uint8Array | undefined {
  if (absent(value)) return undefined;
  let out: Uint8Array | undefined;
  if (value instanceof Uint8Array) out = value;
  else if (typeof value === "string") out = strictBase64(value);
  if (!out) fail(site, code, `${site.path} must be bytes (base64 on the JSON wire).`);
  // Log mode: decoded text gets a buffer of its own (not a view into Node's pool); bytes given stay as they are.
  if (site.mode !== "request") return out === value ? out : new Uint8Array(out);
  if (out.byteLength > site.maxBodyBytes) {
    fail(site, ErrorCodes.resourceLease.payloadTooLarge, {
      message: `${site.path} is larger than ${site.maxBodyBytes} bytes.`,
      limit: site.maxBodyBytes,
    });
  }
  return heldBytes(out);
}

/** Bytes → standard base64. */
export function encodeBytes(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
}

/**
 * Decodes standard base64 (`A–Z a–z 0–9 + /`, up to two `=` at the end, padding optional) or returns undefined.
 * Without a regular expression: Buffer's decoder skips characters outside the alphabet and stops at an inner `=`, so
 * any such character leaves fewer bytes than the text's length promises; base64url's `-` and `_` are refused.
 */
function strictBase64(value: string): Uint8Array | undefined {
  let chars = value.length;
  if (chars > 0 && value.charCodeAt(chars - 1) === 61) chars--;
  if (chars > 0 && value.charCodeAt(chars - 1) === 61) chars--;
  if (chars % 4 === 1 || value.includes("-") || value.includes("_")) return undefined;
  const decoded = Buffer.from(value, "base64");
  // A plain Uint8Array over the decoded bytes, not yet copied (a small Buffer is a view into Node's shared pool): the
  // caller copies it as its mode says.
  return decoded.length === Math.floor((chars * 3) / 4)
    ? new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength)
    : undefined;
}

/** True or false. */
export function bool(
  value: unknown,
  site: Site,
  code: string = ErrorCodes.resourceLease.argumentInvalid,
): boolean | undefined {
  if (absent(value)) return undefined;
  if (typeof value !== "boolean") fail(site, code, `${site.path} must be true or false.`);
  return value;
}

/** An object (not an array); `required` is the code when absent. */
export function object(
  value: unknown,
  site: Site,
  rules: { required?: string; code?: string } = {},
): Record<string, unknown> | undefined {
  if (absent(value)) {
    if (rules.required) fail(site, rules.required, `${site.path || "The message"} is required.`);
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    const code = rules.code ?? rules.required ?? ErrorCodes.resourceLease.argumentInvalid;
    fail(site, code, `${site.path || "The message"} must be an object.`);
  }
  return value as Record<string, unknown>;
}

/** A list, at most `max` long in request mode. */
export function list(
  value: unknown,
  site: Site,
  rules: { max?: number; code?: string } = {},
): readonly unknown[] | undefined {
  if (absent(value)) return undefined;
  const code = rules.code ?? ErrorCodes.resourceLease.argumentInvalid;
  if (!Array.isArray(value)) fail(site, code, `${site.path} must be a list.`);
  if (site.mode === "request" && rules.max !== undefined && value.length > rules.max) {
    fail(site, code, { message: `${site.path} holds more than ${rules.max} entries.`, limit: rules.max });
  }
  return value;
}

/**
 * A string → string map: at most 64 entries, keys of 128 and values of 4096 characters (request mode). The key
 * `__proto__` is refused: a plain object cannot hold it as data, so it would vanish on the way in or back from a log.
 */
export function stringMap(
  value: unknown,
  site: Site,
  code: string = ErrorCodes.resourceLease.argumentInvalid,
): Record<string, string> | undefined {
  const source = object(value, site, { code });
  if (source === undefined) return undefined;
  const out: Record<string, string> = {};
  let count = 0;
  for (const key of Object.keys(source)) {
    const v = source[key];
    if (key === "__proto__") fail(site, code, `${site.path} may not have a key named __proto__.`);
    if (site.mode === "request") {
      if (++count > Limits.attributeCount) {
        fail(site, code, {
          message: `${site.path} has more than ${Limits.attributeCount} entries.`,
          limit: Limits.attributeCount,
        });
      }
      checkText(key, site, { max: Limits.attributeKeyLength, code, label: () => `A key of ${site.path}` });
    }
    if (typeof v !== "string") fail(child(site, key), code, `${site.path}.${key} must be a string.`);
    if (site.mode === "request") checkText(v, child(site, key), { max: Limits.attributeValueLength, code });
    out[key] = v;
  }
  return out;
}
