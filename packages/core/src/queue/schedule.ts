import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseLimits } from "../wire/limits.js";

/**
 * A payload as the queue stores it: `delayMs` becomes `notBefore` (from the node's clock `now`), so the log holds a
 * time, never a delay that would mean something else on replay.
 * @throws OmniRelayError invalid-argument `resourcelease.payload.invalid` when both are given or the due time would
 *   pass what a log can hold.
 */
export function scheduledPayload(
  payload: ResourceLeaseItemPayload,
  at: { readonly now: number; readonly index: number },
): ResourceLeaseItemPayload {
  if (payload.delayMs === undefined) return payload;
  const { delayMs, ...rest } = payload;
  const field = `payloads[${at.index}]`;
  if (payload.notBefore !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.payloadInvalid,
      message: `${field} gives both notBefore and delayMs; give one.`,
      metadata: { field: `${field}.delayMs` },
    });
  }
  const notBefore = at.now + delayMs;
  if (!(notBefore <= ResourceLeaseLimits.maxTimeMs)) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.payloadInvalid,
      message: `${field}.delayMs puts the item past the latest time a log can hold.`,
      metadata: { field: `${field}.delayMs` },
    });
  }
  return delayMs === 0 ? rest : { ...rest, notBefore };
}
