import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/**
 * A request message whose bytes did not decode (not protobuf of its rpc, or an int64 past 2^53 that a JavaScript
 * number cannot carry exactly). Handlers answer it with {@link MalformedMessage.error}. Internal.
 */
export class MalformedMessage {
  /** `refusal`: the error to answer with, when a check refused the bytes before decoding them. */
  constructor(
    private readonly cause: unknown,
    private readonly refusal?: OmniRelayError,
  ) {}

  /**
   * The refusal of a check, else invalid-argument `omnirelay.request.malformed_protobuf` for a message of `rpc`
   * (metadata `rpc`).
   */
  error(rpc: string): OmniRelayError {
    if (this.refusal) return this.refusal;
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestMalformedProtobuf,
      message: `The ${rpc} request is not a valid message: ${(this.cause as Error)?.message ?? String(this.cause)}`,
      metadata: { rpc },
      cause: this.cause,
    });
  }
}

type RequestDecoders = Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>;

/** Refuses a request's bytes before they are decoded (too costly to decode, say), or returns `undefined`. */
export type RequestCheck = (bytes: Buffer) => OmniRelayError | undefined;

/**
 * The service definition with request decoders that never throw: grpc-js answers a throwing decoder with INTERNAL
 * "Error deserializing request" and no OmniRelay trailers (a server bug, by the status table), but undecodable bytes
 * are the caller's mistake. A message that does not decode, or that a `checks` entry of its method refuses (checked
 * first, so a refused message is never decoded), arrives as a {@link MalformedMessage}. Internal.
 */
export function tolerantDeserializers<T extends RequestDecoders>(
  service: T,
  checks: Readonly<Record<string, RequestCheck>> = {},
): T {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const check = checks[name];
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const refusal = check?.(bytes);
        if (refusal) return new MalformedMessage(refusal, refusal);
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedMessage(error);
        }
      },
    };
  }
  return out as T;
}
