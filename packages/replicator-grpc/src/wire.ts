import { status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import { ErrorCodes, isOmniRelayError, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { decodeReplicationEvent, encodeReplicationEvent, parseStatus, statusInfo } from "@omnirelay/core/wire";
import type { ReplicationEvent } from "./gen/omnirelay/replication/v1/hub.js";

const decoder = new TextDecoder();

/** Encodes an event for the wire: its core JSON envelope as UTF-8. Internal. */
export function toWireEvent(event: ResourceLeaseReplicationEvent): ReplicationEvent {
  return {
    sequenceNumber: event.sequenceNumber,
    json: Buffer.from(JSON.stringify(encodeReplicationEvent(event)), "utf8"),
  };
}

/**
 * Decodes a wire event and checks that its envelope carries the same sequence number. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid` (metadata `field`).
 */
export function fromWireEvent(wire: ReplicationEvent): ResourceLeaseReplicationEvent {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(wire.json));
  } catch (error) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.replication.eventInvalid,
      message: `Event ${wire.sequenceNumber} is not valid JSON.`,
      metadata: { field: "json" },
      cause: error,
    });
  }
  const event = decodeReplicationEvent(json);
  if (event.sequenceNumber !== wire.sequenceNumber) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.replication.eventInvalid,
      message: `Event envelope says sequence ${event.sequenceNumber}, the message says ${wire.sequenceNumber}.`,
      metadata: { field: "sequenceNumber" },
    });
  }
  return event;
}

const CODE = "omnirelay-error-code";
const META = "omnirelay-meta-";

/** The gRPC status and trailers of an error (code trailer, and one trailer per metadata key). Internal. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const e = isOmniRelayError(error)
    ? error
    : new OmniRelayError({
        status: "internal",
        code: ErrorCodes.replicationHub.storeFailed,
        message: error instanceof Error ? error.message : String(error),
      });
  const metadata = new Metadata();
  metadata.set(CODE, e.code);
  for (const [key, value] of Object.entries(e.metadata).slice(0, 16)) {
    metadata.set(`${META}${key.toLowerCase().replace(/[^0-9a-z._-]/g, "_")}`, encodeURIComponent(value.slice(0, 512)));
  }
  return { code: statusInfo(e.status).grpcCode, details: e.message.slice(0, 1024), metadata };
}

/** Rebuilds an error received from the hub; without an OmniRelay trailer, transport failures are `unavailable`. Internal. */
export function fromServiceError(error: unknown): OmniRelayError {
  if (isOmniRelayError(error)) return error;
  const e = error as Partial<ServiceError> | undefined;
  const grpcCode = typeof e?.code === "number" ? e.code : GrpcStatus.UNKNOWN;
  const status = parseStatus(grpcCode) ?? "unknown";
  const trailerCode = e?.metadata?.get(CODE)[0];
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(e?.metadata?.getMap() ?? {})) {
    if (key.startsWith(META) && typeof value === "string") metadata[key.slice(META.length)] = decodeURIComponent(value);
  }
  const code =
    typeof trailerCode === "string"
      ? trailerCode
      : status === "deadline-exceeded"
        ? ErrorCodes.replicationHub.ackTimeout
        : status === "cancelled"
          ? ErrorCodes.resourceLease.cancelled
          : ErrorCodes.replicationHub.unavailable;
  return new OmniRelayError({
    status: typeof trailerCode === "string" ? status : status === "unknown" ? "unavailable" : status,
    code,
    message: e?.details || e?.message || "The replication hub call failed.",
    metadata,
    cause: error,
  });
}
