import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { WireMessage } from "./message.js";

/**
 * A plain JSON object, for procedures that define no message of their own (`Dispatcher.registerJson`): absent or
 * `null` reads as `{}`; anything that is not an object is `omnirelay.request.invalid_body`. Written as given.
 */
export const JsonObject: WireMessage<Record<string, unknown>> = (() => {
  const read = (value: unknown): Record<string, unknown> => {
    if (value === undefined || value === null) return {};
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.rpc.requestInvalidBody,
        message: "The request body must be a JSON object.",
        metadata: {
          field: "body",
        },
      });
    }
    return value as Record<string, unknown>;
  };
  const write = (value: Record<string, unknown>) => value ?? {};
  const schema = () => ({ type: "object" });
  return { read, write, schema, field: { read, write, schema } };
})();
