import { status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import { ErrorCodes, isOmniRelayError, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { decodeReplicationEvent, encodeReplicationEvent, parseStatus, statusInfo } from "@omnirelay/core/wire";
import type { ReplicationEvent } from "./gen/omnirelay/replication/v1/hub.js";

// Strict: bytes that are not UTF-8 are refused, not read as U+FFFD (the hub would store what the node never sent).
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The path of the first string (or key) in parsed JSON that is not well-formed Unicode — a lone surrogate, which JSON
 * text can carry as an escape (`"\ud800"`) — or `undefined`. Every log a hub writes stores text as UTF-8, where a lone
 * surrogate becomes U+FFFD: the stored event would differ from the one acknowledged, and the node's resend of it would
 * read as a conflict.
 */
function illFormedPath(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return isWellFormed(value) ? undefined : path;
  if (typeof value !== "object" || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = illFormedPath(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, entry] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (!isWellFormed(key)) return at;
    const found = illFormedPath(entry, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const toWellFormed = (s: string): string => (s as unknown as { toWellFormed(): string }).toWellFormed();

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
      message: `Event ${wire.sequenceNumber} is not valid JSON (as UTF-8).`,
      metadata: { field: "json" },
      cause: error,
    });
  }
  const illFormed = illFormedPath(json, "");
  if (illFormed !== undefined) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.replication.eventInvalid,
      message: `Event ${wire.sequenceNumber}: ${illFormed} is not well-formed Unicode (a lone surrogate).`,
      metadata: { field: illFormed },
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
  // Cut text is made well-formed: a cut can split a surrogate pair (and a refused event's field path may hold a lone
  // surrogate), and encodeURIComponent throws on a lone one.
  for (const [key, value] of Object.entries(e.metadata).slice(0, 16)) {
    const name = `${META}${key.toLowerCase().replace(/[^0-9a-z._-]/g, "_")}`;
    metadata.set(name, encodeURIComponent(toWellFormed(value.slice(0, 512))));
  }
  return { code: statusInfo(e.status).grpcCode, details: toWellFormed(e.message.slice(0, 1024)), metadata };
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
