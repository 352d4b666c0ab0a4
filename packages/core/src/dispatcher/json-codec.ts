import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Decodes a JSON request body to an object. An empty body or `null` is `{}` (so `{}`-only procedures accept an
 * empty POST).
 * @throws OmniRelayError invalid-argument `omnirelay.request.malformed_json` / `omnirelay.request.invalid_body`.
 */
export function decodeJsonBody(body: Uint8Array): Record<string, unknown> {
  if (body.length === 0) return {};
  let text: string;
  let value: unknown;
  try {
    text = decoder.decode(body);
    value = JSON.parse(text);
  } catch (error) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestMalformedJson,
      message: `The request body is not valid JSON: ${(error as Error).message}`,
      metadata: { field: "body" },
    });
  }
  if (value === null) return {};
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
}

/** Encodes a response object as JSON, omitting `undefined` (and so nulls never appear). */
export function encodeJsonBody(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value ?? {}));
}
