import type {
  ResourceLeaseErrorInfo,
  ResourceLeaseItemPayload,
  ResourceLeaseOwnershipToken,
  ResourceLeasePendingItem,
} from "../contracts/payload.js";
import { ResourceLeaseErrorCodes as Codes } from "../errors/codes.js";
import { omniError } from "../errors/omnirelay-error.js";

function invalid(code: string, message: string, field: string): never {
  throw omniError("invalid-argument", code, message, { field });
}

function requiredString(value: unknown, field: string, code: string): string {
  if (typeof value !== "string" || value.trim().length === 0) {
    invalid(code, `${field} is required and must be a non-blank string.`, field);
  }
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") invalid(Codes.payloadInvalid, `${field} must be a string.`, field);
  return value;
}

function finiteInteger(value: unknown, field: string, min: number, code: string = Codes.argumentInvalid): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    invalid(code, `${field} must be an integer >= ${min}.`, field);
  }
  return value;
}

/**
 * Checks a payload that may come from the wire and returns a normalised, frozen copy.
 * Fields are checked in the original's order: resourceType, resourceId, partitionKey, payloadEncoding.
 * @throws OmniRelayError invalid-argument with a `resourcelease.payload.*` code and metadata `field`.
 */
export function validatePayload(input: unknown, field = "payload"): ResourceLeaseItemPayload {
  if (input === undefined || input === null) {
    invalid(Codes.payloadRequired, `${field} is required.`, field);
  }
  if (typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.payloadInvalid, `${field} must be an object.`, field);
  }
  const p = input as Record<string, unknown>;
  const resourceType = requiredString(p.resourceType, `${field}.resourceType`, Codes.resourceTypeRequired);
  const resourceId = requiredString(p.resourceId, `${field}.resourceId`, Codes.resourceIdRequired);
  const partitionKey = requiredString(p.partitionKey, `${field}.partitionKey`, Codes.partitionKeyRequired);
  const payloadEncoding = requiredString(p.payloadEncoding, `${field}.payloadEncoding`, Codes.encodingRequired);
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
    out.body = p.body;
  }
  if (p.attributes !== undefined && p.attributes !== null) {
    if (typeof p.attributes !== "object" || Array.isArray(p.attributes)) {
      invalid(Codes.payloadInvalid, `${field}.attributes must be an object of strings.`, `${field}.attributes`);
    }
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.attributes as Record<string, unknown>)) {
      if (typeof v !== "string") {
        invalid(Codes.payloadInvalid, `${field}.attributes.${k} must be a string.`, `${field}.attributes`);
      }
      attributes[k] = v;
    }
    out.attributes = Object.freeze(attributes);
  }
  const requestId = optionalString(p.requestId, `${field}.requestId`);
  if (requestId !== undefined && requestId.length > 0) out.requestId = requestId;
  return Object.freeze(out);
}

/**
 * Checks an ownership token that may come from the wire.
 * @throws OmniRelayError invalid-argument `resourcelease.lease.token_required` naming the bad field.
 */
export function validateToken(input: unknown, field = "ownershipToken"): ResourceLeaseOwnershipToken {
  if (input === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.tokenRequired, `${field} is required.`, field);
  }
  const t = input as Record<string, unknown>;
  const sequenceId = finiteInteger(t.sequenceId, `${field}.sequenceId`, 1, Codes.tokenRequired);
  const attempt = finiteInteger(t.attempt, `${field}.attempt`, 1, Codes.tokenRequired);
  if (typeof t.leaseId !== "string" || t.leaseId.length === 0) {
    invalid(Codes.tokenRequired, `${field}.leaseId is required.`, `${field}.leaseId`);
  }
  const fencingToken = finiteInteger(t.fencingToken, `${field}.fencingToken`, 1, Codes.tokenRequired);
  return { sequenceId, attempt, leaseId: t.leaseId, fencingToken };
}

function validateErrorInfo(input: unknown, field: string): ResourceLeaseErrorInfo | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== "object" || Array.isArray(input))
    invalid(Codes.argumentInvalid, `${field} must be an object.`, field);
  const e = input as Record<string, unknown>;
  const message = typeof e.message === "string" ? e.message : "";
  const code = optionalString(e.code, `${field}.code`);
  return code === undefined ? { message } : { message, code };
}

/**
 * Checks one `restore` entry.
 * @throws OmniRelayError invalid-argument (`resourcelease.restore.pending_item_required`, `resourcelease.payload.*`).
 */
export function validatePendingItem(input: unknown, field: string, now: number): ResourceLeasePendingItem {
  if (input === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
    invalid(Codes.restoreItemRequired, `${field} is required.`, field);
  }
  const i = input as Record<string, unknown>;
  const payload = validatePayload(i.payload, `${field}.payload`);
  const sequenceId = finiteInteger(i.sequenceId, `${field}.sequenceId`, 1);
  const attempt = i.attempt === undefined || i.attempt === null ? 1 : finiteInteger(i.attempt, `${field}.attempt`, 1);
  const enqueuedAt =
    i.enqueuedAt === undefined || i.enqueuedAt === null
      ? undefined
      : finiteInteger(i.enqueuedAt, `${field}.enqueuedAt`, 0);
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

/** Checks an optional non-negative integer argument (`waitMs`, `maxItems`, …). */
export function optionalInteger(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(Codes.argumentInvalid, `${field} must be an integer between ${min} and ${max}.`, field);
  }
  return value;
}
