/** Error codes of the gRPC transport. The status each code travels with is listed beside it. */
export const GrpcTransportErrorCodes = {
  /** unimplemented: the outbound cannot carry this procedure (not a ResourceLease verb); metadata `procedure`. */
  procedureUnsupported: "omnirelay.grpc.procedure_unsupported",
  /** internal: a procedure answered JSON that the rpc's response message cannot carry; metadata `field`. */
  responseInvalid: "omnirelay.grpc.response_invalid",
  /** the status the remote sent: the remote failed without OmniRelay error trailers (not an OmniRelay server). */
  remoteFailed: "omnirelay.grpc.remote_failed",
  /** failed-precondition: `call()` after `close()`. */
  outboundClosed: "omnirelay.outbound.closed",
  /** unavailable: the inbound cannot bind its address (in use, bad host); metadata `address`. */
  bindFailed: "omnirelay.inbound.bind_failed",
  /**
   * invalid-argument: the request message is not valid protobuf for its rpc, or holds an int64 past 2^53 that
   * JavaScript numbers cannot carry exactly.
   */
  malformedRequest: "omnirelay.request.malformed_protobuf",
  /** failed-precondition: `start()` on an inbound that is closing or closed. */
  inboundState: "omnirelay.inbound.state",
} as const;

/** Union of every code in {@link GrpcTransportErrorCodes}. */
export type GrpcTransportErrorCode = (typeof GrpcTransportErrorCodes)[keyof typeof GrpcTransportErrorCodes];
