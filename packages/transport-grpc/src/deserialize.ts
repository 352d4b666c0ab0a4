import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** A request whose bytes did not decode: answered INVALID_ARGUMENT instead of grpc-js's INTERNAL. */
export class MalformedRequest {
  constructor(private readonly cause: unknown) {}
  error(rpc: string): OmniRelayError {
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.rpc.requestMalformedProtobuf,
      message: `The ${rpc} request is not a valid message: ${(this.cause as Error)?.message ?? String(this.cause)}`,
      metadata: { rpc },
      cause: this.cause,
    });
  }
}

/**
 * The service definition with request decoders that never throw: grpc-js answers a throwing decoder with INTERNAL
 * (a server bug, by the status table), but undecodable bytes are the caller's mistake.
 */
export function tolerantDeserializers<T extends Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>>(
  service: T,
): T {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedRequest(error);
        }
      },
    };
  }
  return out as T;
}
