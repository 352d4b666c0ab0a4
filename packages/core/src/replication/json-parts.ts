import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";
import { getPropertyIgnoreCase } from "./case-insensitive.js";
import { ReplicationErrorCodes } from "./codes.js";
import type {
  ResourceLeaseErrorInfoJson,
  ResourceLeaseItemPayloadJson,
  ResourceLeaseOwnershipTokenJson,
  ResourceLeasePendingItemJson,
} from "./json-types.js";

// Internal building blocks of the JSON codecs: shared by the event envelope and the pending-item DTO.

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decoding context. Inside an event envelope every problem is `resourcelease.replication.event_invalid`; a pending
 * item decoded on its own (restore input) reports the same codes the queue's validation uses, so HTTP clients see
 * `resourcelease.payload.resource_type_required` and friends.
 */
export class JsonDecodeContext {
  constructor(readonly mode: "event" | "item") {}

  fail(field: string, message: string, itemCode: string = Codes.argumentInvalid): never {
    const code = this.mode === "event" ? ReplicationErrorCodes.eventInvalid : itemCode;
    throw omniError("invalid-argument", code, message, { field });
  }
}

/** True when a JSON value is absent (`undefined` or `null`: nulls are omitted on write). */
export function absent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

export function requireObject(ctx: JsonDecodeContext, value: unknown, field: string, code?: string): object {
  if (absent(value)) ctx.fail(field, `${field} is required.`, code);
  if (typeof value !== "object" || Array.isArray(value)) ctx.fail(field, `${field} must be an object.`, code);
  return value;
}

export function requireString(ctx: JsonDecodeContext, value: unknown, field: string, code?: string): string {
  if (typeof value !== "string" || value.trim().length === 0) {
    ctx.fail(field, `${field} is required and must be a non-blank string.`, code);
  }
  return value;
}

export function optionalString(
  ctx: JsonDecodeContext,
  value: unknown,
  field: string,
  code?: string,
): string | undefined {
  if (absent(value)) return undefined;
  if (typeof value !== "string") ctx.fail(field, `${field} must be a string.`, code);
  return value;
}

/** An integer >= `min`; decimal strings are accepted ("numbers may be read from strings"). */
export function requireInteger(
  ctx: JsonDecodeContext,
  value: unknown,
  field: string,
  min: number,
  code?: string,
): number {
  const n = typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min) {
    ctx.fail(field, `${field} must be an integer >= ${min}.`, code);
  }
  return n;
}

const isoPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

const digit = (s: string, i: number): number => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : Number.NaN;
};

/**
 * `YYYY-MM-DDTHH:MM:SS.mmmZ` (exactly what `Date.prototype.toISOString` writes for years 100–9999) → ms, or NaN for
 * anything else, including impossible dates such as 2025-02-30. No regular expression, no Date object: a restart
 * decodes two of these per stored event.
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
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  if (day > days) return Number.NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, milli);
}

/** ISO-8601 with a zone (`…Z` or `…+01:00`) → ms since the epoch; sub-millisecond digits are truncated. */
export function requireTime(ctx: JsonDecodeContext, value: unknown, field: string, code?: string): number {
  if (typeof value === "number" && Number.isFinite(value)) return Math.trunc(value);
  // Fast path for what encodeTime writes (every stored event); anything else takes the general path below.
  if (typeof value === "string" && value.length === 24) {
    const ms = parseCanonicalUtc(value);
    if (!Number.isNaN(ms)) return ms;
  }
  const match = typeof value === "string" ? isoPattern.exec(value.trim()) : null;
  const ms = match && typeof value === "string" ? Date.parse(value.trim()) : Number.NaN;
  if (!match || Number.isNaN(ms)) {
    ctx.fail(field, `${field} must be an ISO-8601 timestamp with a time zone.`, code);
  }
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.parse rolls 2025-02-30 over to March 2; a stored log must not be reinterpreted like that.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) {
    ctx.fail(field, `${field} is not a valid date.`, code);
  }
  return ms;
}

/** Milliseconds since the epoch → ISO-8601 UTC (`2026-01-01T00:00:00.000Z`). */
export function encodeTime(ms: number): string {
  // Events of one tick (a batch of 1,000 enqueues: 2,000 timestamps) mostly share one millisecond, and toISOString
  // costs about a microsecond: remember the last one. A pure cache of a pure function, so sharing it is harmless.
  if (ms !== lastEncoded.ms) {
    lastEncoded.ms = ms;
    lastEncoded.iso = new Date(ms).toISOString();
  }
  return lastEncoded.iso;
}

const lastEncoded = { ms: Number.NaN, iso: "" };

export function encodeBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function decodeBytes(ctx: JsonDecodeContext, value: unknown, field: string, code?: string): Uint8Array {
  const bytes = typeof value === "string" ? strictBase64(value) : undefined;
  if (bytes === undefined) ctx.fail(field, `${field} must be a base64 string.`, code);
  // A view into Buffer's shared pool (small decodes share 8 KiB slabs), not a copy with an ArrayBuffer of its own:
  // a restart decodes one body per stored item, and a million separate ArrayBuffers cost seconds and hundreds of MiB.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes standard base64 (`A–Z a–z 0–9 + /`, up to two `=` at the end, padding optional) or returns undefined.
 * Without a regular expression: Buffer's decoder skips characters outside the alphabet and stops at an inner `=`,
 * so any such character leaves fewer bytes than the text's length promises; it also accepts base64url's `-` and `_`,
 * which are refused here.
 */
function strictBase64(text: string): Buffer | undefined {
  let chars = text.length;
  if (chars > 0 && text.charCodeAt(chars - 1) === 61) chars--;
  if (chars > 0 && text.charCodeAt(chars - 1) === 61) chars--;
  if (chars % 4 === 1 || text.includes("-") || text.includes("_")) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.length === Math.floor((chars * 3) / 4) ? bytes : undefined;
}

export function decodeStringMap(
  ctx: JsonDecodeContext,
  value: unknown,
  field: string,
  code?: string,
): Record<string, string> {
  const source = requireObject(ctx, value, field, code) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const key of Object.keys(source)) {
    const v = source[key];
    // A plain object cannot hold `__proto__` as data: refuse it rather than drop it silently.
    if (key === "__proto__") ctx.fail(field, `${field} may not have a key named __proto__.`, code);
    if (typeof v !== "string") ctx.fail(`${field}.${key}`, `${field}.${key} must be a string.`, code);
    out[key] = v;
  }
  return out;
}

export function encodePayloadJson(payload: ResourceLeaseItemPayload): ResourceLeaseItemPayloadJson {
  const out: Mutable<ResourceLeaseItemPayloadJson> = {
    resourceType: payload.resourceType,
    resourceId: payload.resourceId,
    partitionKey: payload.partitionKey,
    payloadEncoding: payload.payloadEncoding,
  };
  if (payload.body !== undefined) out.body = encodeBytes(payload.body);
  if (payload.attributes !== undefined) out.attributes = { ...payload.attributes };
  if (payload.requestId !== undefined) out.requestId = payload.requestId;
  return out;
}

export function decodePayloadJson(ctx: JsonDecodeContext, value: unknown, field: string): ResourceLeaseItemPayload {
  if (absent(value)) ctx.fail(field, `${field} is required.`, Codes.payloadRequired);
  const p = requireObject(ctx, value, field, Codes.payloadInvalid);
  const get = (name: string) => getPropertyIgnoreCase(p, name);
  const out: Mutable<ResourceLeaseItemPayload> = {
    resourceType: requireString(ctx, get("resourceType"), `${field}.resourceType`, Codes.resourceTypeRequired),
    resourceId: requireString(ctx, get("resourceId"), `${field}.resourceId`, Codes.resourceIdRequired),
    partitionKey: requireString(ctx, get("partitionKey"), `${field}.partitionKey`, Codes.partitionKeyRequired),
    payloadEncoding: requireString(ctx, get("payloadEncoding"), `${field}.payloadEncoding`, Codes.encodingRequired),
  };
  const body = get("body");
  if (!absent(body)) out.body = decodeBytes(ctx, body, `${field}.body`, Codes.payloadInvalid);
  const attributes = get("attributes");
  if (!absent(attributes)) {
    out.attributes = decodeStringMap(ctx, attributes, `${field}.attributes`, Codes.payloadInvalid);
  }
  const requestId = optionalString(ctx, get("requestId"), `${field}.requestId`, Codes.payloadInvalid);
  if (requestId !== undefined) out.requestId = requestId;
  return out;
}

export function encodeTokenJson(token: ResourceLeaseOwnershipToken): ResourceLeaseOwnershipTokenJson {
  return {
    sequenceId: token.sequenceId,
    attempt: token.attempt,
    leaseId: token.leaseId,
    fencingToken: token.fencingToken,
  };
}

export function decodeTokenJson(ctx: JsonDecodeContext, value: unknown, field: string): ResourceLeaseOwnershipToken {
  const code = Codes.tokenRequired;
  const t = requireObject(ctx, value, field, code);
  const get = (name: string) => getPropertyIgnoreCase(t, name);
  return {
    sequenceId: requireInteger(ctx, get("sequenceId"), `${field}.sequenceId`, 1, code),
    attempt: requireInteger(ctx, get("attempt"), `${field}.attempt`, 1, code),
    leaseId: requireString(ctx, get("leaseId"), `${field}.leaseId`, code),
    fencingToken: requireInteger(ctx, get("fencingToken"), `${field}.fencingToken`, 1, code),
  };
}

export function encodeErrorJson(error: ResourceLeaseErrorInfo): ResourceLeaseErrorInfoJson {
  return error.code === undefined ? { message: error.message } : { message: error.message, code: error.code };
}

export function decodeErrorJson(ctx: JsonDecodeContext, value: unknown, field: string): ResourceLeaseErrorInfo {
  const e = requireObject(ctx, value, field);
  const message = getPropertyIgnoreCase(e, "message");
  if (typeof message !== "string") ctx.fail(`${field}.message`, `${field}.message must be a string.`);
  const code = optionalString(ctx, getPropertyIgnoreCase(e, "code"), `${field}.code`);
  return code === undefined ? { message } : { message, code };
}

export function encodePendingItemJson(item: ResourceLeasePendingItem): ResourceLeasePendingItemJson {
  const out: Mutable<ResourceLeasePendingItemJson> = {
    payload: encodePayloadJson(item.payload),
    sequenceId: item.sequenceId,
    attempt: item.attempt,
    enqueuedAt: encodeTime(item.enqueuedAt),
  };
  if (item.lastError !== undefined) out.lastError = encodeErrorJson(item.lastError);
  if (item.lastOwnershipToken !== undefined) out.lastOwnershipToken = encodeTokenJson(item.lastOwnershipToken);
  if (item.availableAt !== undefined) out.availableAt = encodeTime(item.availableAt);
  return out;
}

/** Defaults for fields a restore request may leave out; inside an event envelope every field is required. */
export interface PendingItemDefaults {
  readonly defaultEnqueuedAt?: number;
}

export function decodePendingItemJson(
  ctx: JsonDecodeContext,
  value: unknown,
  field: string,
  defaults: PendingItemDefaults = {},
): ResourceLeasePendingItem {
  const i = requireObject(ctx, value, field, Codes.restoreItemRequired);
  const get = (name: string) => getPropertyIgnoreCase(i, name);
  const payload = decodePayloadJson(ctx, get("payload"), `${field}.payload`);
  const sequenceId = requireInteger(ctx, get("sequenceId"), `${field}.sequenceId`, 1);
  const rawAttempt = get("attempt");
  const attempt =
    absent(rawAttempt) && ctx.mode === "item" ? 1 : requireInteger(ctx, rawAttempt, `${field}.attempt`, 1);
  const rawEnqueuedAt = get("enqueuedAt");
  const enqueuedAt =
    absent(rawEnqueuedAt) && defaults.defaultEnqueuedAt !== undefined
      ? defaults.defaultEnqueuedAt
      : requireTime(ctx, rawEnqueuedAt, `${field}.enqueuedAt`);
  const out: Mutable<ResourceLeasePendingItem> = { payload, sequenceId, attempt, enqueuedAt };
  const lastError = get("lastError");
  if (!absent(lastError)) out.lastError = decodeErrorJson(ctx, lastError, `${field}.lastError`);
  const lastOwnershipToken = get("lastOwnershipToken");
  if (!absent(lastOwnershipToken)) {
    out.lastOwnershipToken = decodeTokenJson(ctx, lastOwnershipToken, `${field}.lastOwnershipToken`);
  }
  const availableAt = get("availableAt");
  if (!absent(availableAt)) out.availableAt = requireTime(ctx, availableAt, `${field}.availableAt`);
  return out;
}
