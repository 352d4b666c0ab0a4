/**
 * @omnirelay/transport-grpc — the ResourceLease procedures of an OmniRelay dispatcher over gRPC: {@link GrpcInbound}
 * serves a dispatcher as `omnirelay.resourcelease.v1.ResourceLeaseService`, {@link GrpcOutbound} calls one. Both carry
 * exactly the JSON DTOs of the HTTP transport, and errors keep their status, code, message and metadata.
 * @packageDocumentation
 */

export {
  type DeadLetterItem,
  type ErrorInfo,
  type ItemPayload,
  type LeaseGrant,
  type OwnershipToken,
  type PendingItem,
  type QueueStats,
  ResourceLeaseServiceClient,
  type ResourceLeaseServiceServer,
  ResourceLeaseServiceService,
  type StatsResponse,
} from "./gen/omnirelay/resourcelease/v1/resourcelease.js";
export { GrpcInbound } from "./inbound.js";
export type { GrpcInboundOptions, GrpcInboundSessionOptions, GrpcInboundTlsOptions } from "./inbound-options.js";
export {
  type ResourceLeaseRpc,
  type ResourceLeaseRpcName,
  resourceLeaseRpcs,
  selectResourceLeaseRpc,
} from "./mapping/procedures.js";
export { GrpcOutbound, type GrpcOutboundOptions, type GrpcOutboundTlsOptions } from "./outbound.js";
export {
  decodeMetadataKey,
  encodeMetadataKey,
  fromGrpcError,
  type GrpcErrorLike,
  type GrpcErrorStatus,
  GrpcErrorTrailers,
  toGrpcStatus,
} from "./status.js";
