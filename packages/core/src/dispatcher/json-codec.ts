import { omniError } from "../errors/omnirelay-error.js";

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Error codes of the dispatcher and its codec. */
export const DispatcherErrorCodes = {
  /** invalid-argument: the body is not valid UTF-8 JSON. */
  malformedJson: "omnirelay.request.malformed_json",
  /** invalid-argument: the body is JSON but not an object. */
  invalidBody: "omnirelay.request.invalid_body",
  /** invalid-argument: no procedure was named (`Rpc-Procedure` header missing). */
  procedureRequired: "omnirelay.request.procedure_required",
  /** unimplemented: no procedure with that name is registered. */
  unknownProcedure: "omnirelay.procedure.not_found",
  /** already-exists: a procedure with that name is already registered. */
  duplicateProcedure: "omnirelay.procedure.duplicate",
  /** invalid-argument: the request body exceeds the inbound's limit (HTTP answers 413); metadata `field`, `limit`. */
  bodyTooLarge: "omnirelay.request.too_large",
  /** deadline-exceeded: the client did not send the whole request in time (HTTP answers 408). */
  requestTimeout: "omnirelay.request.timeout",
  /** invalid-argument: the request headers exceed the server's limit (HTTP answers 431). */
  headersTooLarge: "omnirelay.request.headers_too_large",
  /** invalid-argument: the bytes sent are not a well-formed HTTP/1.1 request. */
  malformedHttp: "omnirelay.request.malformed_http",
  /** invalid-argument: an `Rpc-*` header has a bad value; metadata `header`. */
  invalidHeader: "omnirelay.request.invalid_header",
  /** deadline-exceeded: the call's deadline passed. */
  deadlineExceeded: "omnirelay.deadline_exceeded",
  /** cancelled: the caller went away. */
  cancelled: "omnirelay.cancelled",
  /** unavailable: the inbound or the dispatcher is shutting down (it no longer takes calls). */
  shuttingDown: "omnirelay.inbound.shutting_down",
  /**
   * failed-precondition: a lifecycle step out of order — `start()` after `stop()`, or an inbound attached to a
   * dispatcher that has already started.
   */
  lifecycleState: "omnirelay.lifecycle.state",
  /** internal: the handler failed with something that is not an OmniRelayError. */
  internal: "omnirelay.internal",
  /** unavailable: the remote could not be reached. */
  transportFailed: "omnirelay.transport.unavailable",
  /** internal: the remote answered something that is not the procedure's response message; metadata `field`. */
  responseInvalid: "omnirelay.response.invalid",
} as const;

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
    throw omniError(
      "invalid-argument",
      DispatcherErrorCodes.malformedJson,
      `The request body is not valid JSON: ${(error as Error).message}`,
      { field: "body" },
    );
  }
  if (value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw omniError("invalid-argument", DispatcherErrorCodes.invalidBody, "The request body must be a JSON object.", {
      field: "body",
    });
  }
  return value as Record<string, unknown>;
}

/** Encodes a response object as JSON, omitting `undefined` (and so nulls never appear). */
export function encodeJsonBody(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value ?? {}));
}
