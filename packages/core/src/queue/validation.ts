import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";
import { ResourceLeaseLimits as Limits } from "./limits.js";

// Everything the queue accepts passes through here, whatever transport it came from, so that everything it accepts
// can be written to an event log, read back and replayed to the same state (DESIGN.md §10.1).

function invalid(code: string, message: string, field: string, limit?: number): never {
  throw omniError("invalid-argument", code, message, limit === undefined ? { field } : { field, limit: String(limit) });
}

const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * A string within `max` code units that UTF-8 can carry (no lone surrogates: protobuf, SQLite and object stores
 * would each turn one into U+FFFD, so two copies of one event would differ).
 */
function checkText(value: string, field: string, max: number, code: string, label = field): string {
  if (value.length > max) invalid(code, `${label} is longer than ${max} characters.`, field, max);
  if (!wellFormed(value)) invalid(code, `${label} is not well-formed Unicode (a lone surrogate).`, field);
  return value;
}

function requiredString(value: unknown, field: string, max: number, code: string): string {
  if (typeof value !== "string" || value.trim().length === 0) {
    invalid(code, `${field} is required and must be a non-blank string.`, field);
  }
  return checkText(value, field, max, code === Codes.argumentInvalid ? code : Codes.payloadInvalid);
}

function optionalString(value: unknown, field: string, max: number, code: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") invalid(code, `${field} must be a string.`, field);
  return checkText(value, field, max, code);
}

function integerIn(value: unknown, field: string, min: number, max: number, code: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(code, `${field} must be an integer between ${min} and ${max}.`, field);
  }
  return value;
}

/**
 * A string→string map within the attribute limits. Keys are copied onto a fresh object; `__proto__` is refused
 * because a plain object cannot hold it as data (it would vanish on the way in or on the way back from the log).
 */
export function validateStringMap(value: unknown, field: string, code: string): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    invalid(code, `${field} must be an object of strings.`, field);
  }
  const out: Record<string, string> = {};
  let count = 0;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (++count > Limits.attributeCount) {
      invalid(code, `${field} has more than ${Limits.attributeCount} entries.`, field, Limits.attributeCount);
    }
    if (k === "__proto__") invalid(code, `${field} may not have a key named __proto__.`, field);
    checkText(k, field, Limits.attributeKeyLength, code, `A key of ${field}`);
    if (typeof v !== "string") invalid(code, `${field}.${k} must be a string.`, field);
    out[k] = checkText(v, `${field}.${k}`, Limits.attributeValueLength, code);
  }
  return out;
}

/**
 * Body bytes as the queue keeps them: a view into a larger buffer (Node's 8 KiB allocation pool, a gRPC message,
 * a request body) is copied, so a held item never keeps more memory alive than its own bytes.
 */
function ownBytes(body: Uint8Array): Uint8Array {
  return body.byteOffset === 0 &&
    body.byteLength === body.buffer.byteLength &&
    !(body.buffer instanceof SharedArrayBuffer)
    ? body
    : new Uint8Array(body);
}

/** Limits that depend on the queue's options. */
export interface PayloadValidationOptions {
  /** Largest body, in bytes. @defaultValue 1 MiB */
  readonly maxBodyBytes?: number;
}

/**
 * Checks a payload that may come from the wire and returns a normalised, frozen copy.
 * Fields are checked in the original's order: resourceType, resourceId, partitionKey, payloadEncoding.
 * @throws OmniRelayError invalid-argument with a `resourcelease.payload.*` code and metadata `field` (and `limit`
 * when a length limit of {@link ResourceLeaseLimits} or `maxBodyBytes` was exceeded).
 */
export function validatePayload(
  input: unknown,
  field = "payload",
  options: PayloadValidationOptions = {},
): ResourceLeaseItemPayload {
  if (input === undefined || input === null) {
    invalid(Codes.payloadRequired, `${field} is required.`, field);
  }
  if (typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.payloadInvalid, `${field} must be an object.`, field);
  }
  const p = input as Record<string, unknown>;
  const resourceType = requiredString(
    p.resourceType,
    `${field}.resourceType`,
    Limits.resourceTypeLength,
    Codes.resourceTypeRequired,
  );
  const resourceId = requiredString(
    p.resourceId,
    `${field}.resourceId`,
    Limits.resourceIdLength,
    Codes.resourceIdRequired,
  );
  const partitionKey = requiredString(
    p.partitionKey,
    `${field}.partitionKey`,
    Limits.partitionKeyLength,
    Codes.partitionKeyRequired,
  );
  const payloadEncoding = requiredString(
    p.payloadEncoding,
    `${field}.payloadEncoding`,
    Limits.payloadEncodingLength,
    Codes.encodingRequired,
  );
  const out: {
    resourceType: string;
    resourceId: string;
    partitionKey: string;
    payloadEncoding: string;
    body?: Uint8Array;
    attributes?: Readonly<Record<string, string>>;
    requestId?: string;
  } = { resourceType, resourceId, partitionKey, payloadEncoding };
  if (p.body !== undefined && p.body !== null) {
    if (!(p.body instanceof Uint8Array)) invalid(Codes.payloadInvalid, `${field}.body must be bytes.`, `${field}.body`);
    const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (p.body.byteLength > max) {
      invalid(Codes.payloadTooLarge, `${field}.body is larger than ${max} bytes.`, `${field}.body`, max);
    }
    out.body = ownBytes(p.body);
  }
  if (p.attributes !== undefined && p.attributes !== null) {
    out.attributes = Object.freeze(validateStringMap(p.attributes, `${field}.attributes`, Codes.payloadInvalid));
  }
  const requestId = optionalString(p.requestId, `${field}.requestId`, Limits.requestIdLength, Codes.payloadInvalid);
  if (requestId !== undefined && requestId.length > 0) out.requestId = requestId;
  return Object.freeze(out);
}

/** Default of the queue option `maxBodyBytes`. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Checks an ownership token that may come from the wire.
 * @throws OmniRelayError invalid-argument `resourcelease.lease.token_required` naming the bad field.
 */
export function validateToken(input: unknown, field = "ownershipToken"): ResourceLeaseOwnershipToken {
  if (input === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.tokenRequired, `${field} is required.`, field);
  }
  const t = input as Record<string, unknown>;
  const code = Codes.tokenRequired;
  const sequenceId = integerIn(t.sequenceId, `${field}.sequenceId`, 1, Number.MAX_SAFE_INTEGER, code);
  const attempt = integerIn(t.attempt, `${field}.attempt`, 1, Number.MAX_SAFE_INTEGER, code);
  if (typeof t.leaseId !== "string" || t.leaseId.length === 0) {
    invalid(code, `${field}.leaseId is required.`, `${field}.leaseId`);
  }
  checkText(t.leaseId, `${field}.leaseId`, Limits.leaseIdLength, code);
  const fencingToken = integerIn(t.fencingToken, `${field}.fencingToken`, 1, Number.MAX_SAFE_INTEGER, code);
  return { sequenceId, attempt, leaseId: t.leaseId, fencingToken };
}

/** Checks an error description (a restored item's `lastError`, a fail's reason and code). */
export function validateErrorInfo(input: unknown, field: string): ResourceLeaseErrorInfo | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.argumentInvalid, `${field} must be an object.`, field);
  }
  const e = input as Record<string, unknown>;
  const message = optionalString(e.message, `${field}.message`, Limits.errorMessageLength, Codes.argumentInvalid) ?? "";
  const code = optionalString(e.code, `${field}.code`, Limits.errorCodeLength, Codes.argumentInvalid);
  return code === undefined ? { message } : { message, code };
}

/** Checks an optional time (ms since the epoch) within what an event log can write and read back. */
export function optionalTime(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  return integerIn(value, field, 0, Limits.maxTimeMs, Codes.argumentInvalid);
}

/**
 * Checks one `restore` entry. Its `sequenceId` must be at most {@link ResourceLeaseLimits.maxSequenceId}.
 * @throws OmniRelayError invalid-argument (`resourcelease.restore.pending_item_required`, `resourcelease.payload.*`,
 * `resourcelease.argument.invalid`).
 */
export function validatePendingItem(
  input: unknown,
  field: string,
  now: number,
  options: PayloadValidationOptions = {},
): ResourceLeasePendingItem {
  if (input === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.restoreItemRequired, `${field} is required.`, field);
  }
  const i = input as Record<string, unknown>;
  const payload = validatePayload(i.payload, `${field}.payload`, options);
  const sequenceId = integerIn(i.sequenceId, `${field}.sequenceId`, 1, Limits.maxSequenceId, Codes.argumentInvalid);
  const attempt =
    i.attempt === undefined || i.attempt === null
      ? 1
      : integerIn(i.attempt, `${field}.attempt`, 1, Limits.maxAttempt, Codes.argumentInvalid);
  const enqueuedAt = optionalTime(i.enqueuedAt, `${field}.enqueuedAt`);
  const lastError = validateErrorInfo(i.lastError, `${field}.lastError`);
  const lastOwnershipToken =
    i.lastOwnershipToken === undefined || i.lastOwnershipToken === null
      ? undefined
      : validateToken(i.lastOwnershipToken, `${field}.lastOwnershipToken`);
  return {
    payload,
    sequenceId,
    attempt,
    enqueuedAt: enqueuedAt ?? now,
    ...(lastError ? { lastError } : {}),
    ...(lastOwnershipToken ? { lastOwnershipToken } : {}),
  };
}

/** Checks an optional caller-chosen peer id. */
export function validatePeerId(value: unknown, field = "peerId"): string | undefined {
  const peerId = optionalString(value, field, Limits.peerIdLength, Codes.argumentInvalid);
  return peerId || undefined;
}

/** Checks an optional string argument within `max` characters. */
export function optionalText(value: unknown, field: string, max: number): string | undefined {
  return optionalString(value, field, max, Codes.argumentInvalid);
}

/** Checks an optional non-negative integer argument (`waitMs`, `maxItems`, …). */
export function optionalInteger(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  return integerIn(value, field, min, max, Codes.argumentInvalid);
}
