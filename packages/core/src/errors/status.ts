/**
 * Transport-neutral status of an {@link OmniRelayError}, in the gRPC vocabulary.
 * The wire name (`INVALID_ARGUMENT`), the HTTP status and the gRPC code come from one table,
 * {@link statusTable}, used by every transport.
 */
export type OmniRelayStatus =
  | "ok"
  | "cancelled"
  | "unknown"
  | "invalid-argument"
  | "deadline-exceeded"
  | "not-found"
  | "already-exists"
  | "permission-denied"
  | "resource-exhausted"
  | "failed-precondition"
  | "aborted"
  | "out-of-range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "data-loss"
  | "unauthenticated";

/** How one status appears on each transport. */
export interface OmniRelayStatusInfo {
  /** The status in the gRPC vocabulary. */
  readonly status: OmniRelayStatus;
  /** `UPPER_SNAKE` name used in HTTP error bodies and the `Rpc-Status` header. */
  readonly wireName: string;
  /** HTTP status code. */
  readonly httpStatus: number;
  /** Numeric gRPC status code. */
  readonly grpcCode: number;
}

const rows: ReadonlyArray<readonly [OmniRelayStatus, string, number, number]> = [
  ["ok", "OK", 200, 0],
  ["cancelled", "CANCELLED", 499, 1],
  ["unknown", "UNKNOWN", 500, 2],
  ["invalid-argument", "INVALID_ARGUMENT", 400, 3],
  ["deadline-exceeded", "DEADLINE_EXCEEDED", 504, 4],
  ["not-found", "NOT_FOUND", 404, 5],
  ["already-exists", "ALREADY_EXISTS", 409, 6],
  ["permission-denied", "PERMISSION_DENIED", 403, 7],
  ["resource-exhausted", "RESOURCE_EXHAUSTED", 429, 8],
  ["failed-precondition", "FAILED_PRECONDITION", 412, 9],
  ["aborted", "ABORTED", 409, 10],
  ["out-of-range", "OUT_OF_RANGE", 400, 11],
  ["unimplemented", "UNIMPLEMENTED", 501, 12],
  ["internal", "INTERNAL", 500, 13],
  ["unavailable", "UNAVAILABLE", 503, 14],
  ["data-loss", "DATA_LOSS", 500, 15],
  ["unauthenticated", "UNAUTHENTICATED", 401, 16],
];

/** The one status table every transport uses. Keyed by status. */
export const statusTable: ReadonlyMap<OmniRelayStatus, OmniRelayStatusInfo> = new Map(
  rows.map(([status, wireName, httpStatus, grpcCode]) => [status, { status, wireName, httpStatus, grpcCode }]),
);

const byWireName = new Map([...statusTable.values()].map((info) => [info.wireName, info]));
const byGrpcCode = new Map([...statusTable.values()].map((info) => [info.grpcCode, info]));

/** Looks up the transport mapping of a status. */
export function statusInfo(status: OmniRelayStatus): OmniRelayStatusInfo {
  return statusTable.get(status) ?? (statusTable.get("unknown") as OmniRelayStatusInfo);
}

/**
 * Parses a status from its wire name (`INVALID_ARGUMENT`), its gRPC-vocabulary name (`invalid-argument`)
 * or its numeric gRPC code. Returns `undefined` when nothing matches, and for any other value (a boolean, an
 * object, `null` read from a remote's JSON): it never throws.
 */
export function parseStatus(value: unknown): OmniRelayStatus | undefined {
  if (typeof value === "number") return byGrpcCode.get(value)?.status;
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  if (statusTable.has(trimmed as OmniRelayStatus)) return trimmed as OmniRelayStatus;
  return byWireName.get(trimmed.toUpperCase().replace(/-/g, "_"))?.status;
}
