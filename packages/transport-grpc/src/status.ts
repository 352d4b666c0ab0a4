import { status as GrpcStatus, Metadata } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { parseStatus, statusInfo } from "@omnirelay/core/wire";

/** Trailer names that carry an {@link OmniRelayError} beside the gRPC status code. */
export const GrpcErrorTrailers = {
  /** Wire name of the status, e.g. `FAILED_PRECONDITION`. */
  status: "omnirelay-status",
  /** The stable dotted code, e.g. `resourcelease.lease.fenced`. */
  code: "omnirelay-error-code",
  /** The message, percent-encoded outside printable ASCII. */
  message: "omnirelay-error-message",
  /** Prefix of one trailer per metadata entry; the key is escaped by {@link encodeMetadataKey}. */
  metaPrefix: "omnirelay-meta-",
} as const;

// Trailer values travel in HTTP/2 headers: keep them well below grpc-js's 8 KiB metadata limit.
const maxMessageChars = 2048;
const maxMetaValueChars = 1024;
const maxMetaEntries = 64;

/**
 * Escapes a metadata key into the gRPC key alphabet (`0-9 a-z . -`), reversibly, so case survives (grpc-js lower-cases
 * keys): `_` + lower-case letter is that upper-case letter, `__` is `_`, and `_0` + 4 hex digits is any other UTF-16
 * unit. `retryAfterMs` → `retry_after_ms`.
 */
export function encodeMetadataKey(key: string): string {
  let out = "";
  for (const ch of key) {
    if (/^[0-9a-z.-]$/.test(ch)) out += ch;
    else if (ch === "_") out += "__";
    else if (/^[A-Z]$/.test(ch)) out += `_${ch.toLowerCase()}`;
    else out += escapeUnits(ch);
  }
  // grpc-js requires a Buffer value for keys ending in -bin: escape the last letter so the key stays a text key.
  return out.endsWith("-bin") ? `${out.slice(0, -1)}${escapeUnits("n")}` : out;
}

function escapeUnits(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) out += `_0${text.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}

/** Reverses {@link encodeMetadataKey}; `undefined` for text it cannot have produced. */
export function decodeMetadataKey(encoded: string): string | undefined {
  let out = "";
  for (let i = 0; i < encoded.length; i++) {
    const ch = encoded[i]!;
    if (ch !== "_") {
      out += ch;
      continue;
    }
    const next = encoded[i + 1];
    if (next === "_") {
      out += "_";
      i += 1;
    } else if (next !== undefined && /^[a-z]$/.test(next)) {
      out += next.toUpperCase();
      i += 1;
    } else if (next === "0" && /^[0-9a-f]{4}$/.test(encoded.slice(i + 2, i + 6))) {
      out += String.fromCharCode(Number.parseInt(encoded.slice(i + 2, i + 6), 16));
      i += 5;
    } else {
      return undefined;
    }
  }
  return out;
}

/** Percent-encodes the UTF-8 bytes of `value` outside printable ASCII (and `%`), as gRPC does for `grpc-message`. */
export function encodeTrailerValue(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Reverses {@link encodeTrailerValue}; malformed escapes are kept as they are. */
export function decodeTrailerValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(value.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The status a grpc-js callback reports for an error. */
export interface GrpcErrorStatus {
  readonly code: number;
  readonly details: string;
  readonly metadata: Metadata;
}

/**
 * The gRPC form of an error: the code from core's status table, the message as `details`, and trailers
 * `omnirelay-status`, `omnirelay-error-code`, `omnirelay-error-message` and `omnirelay-meta-<key>`. Messages longer
 * than 2048 characters and metadata values longer than 1024 are truncated; at most 64 metadata entries are sent.
 */
export function toGrpcStatus(error: OmniRelayError): GrpcErrorStatus {
  const info = statusInfo(error.status);
  const message = error.message.slice(0, maxMessageChars);
  const metadata = new Metadata();
  metadata.set(GrpcErrorTrailers.status, info.wireName);
  metadata.set(GrpcErrorTrailers.code, encodeTrailerValue(error.code));
  metadata.set(GrpcErrorTrailers.message, encodeTrailerValue(message));
  for (const [key, value] of Object.entries(error.metadata).slice(0, maxMetaEntries)) {
    metadata.set(
      `${GrpcErrorTrailers.metaPrefix}${encodeMetadataKey(key)}`,
      encodeTrailerValue(value.slice(0, maxMetaValueChars)),
    );
  }
  return { code: info.grpcCode, details: message, metadata };
}

/** What a grpc-js client reports for a failed call (a `ServiceError`). */
export interface GrpcErrorLike {
  readonly code?: number;
  readonly details?: string;
  readonly message?: string;
  readonly metadata?: Metadata;
}

function first(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/**
 * Rebuilds the {@link OmniRelayError} a remote sent from its status and trailers. Without OmniRelay trailers the code
 * depends on the status: unavailable is `omnirelay.transport.unavailable` (the remote could not be reached),
 * deadline-exceeded `omnirelay.deadline_exceeded`, cancelled `omnirelay.cancelled`, anything else
 * `omnirelay.grpc.remote_failed`.
 */
export function fromGrpcError(error: GrpcErrorLike): OmniRelayError {
  const trailers = error.metadata;
  const grpcCode = typeof error.code === "number" ? error.code : GrpcStatus.UNKNOWN;
  const status = parseStatus(first(trailers, GrpcErrorTrailers.status)) ?? parseStatus(grpcCode) ?? "unknown";
  const rawCode = first(trailers, GrpcErrorTrailers.code);
  const rawMessage = first(trailers, GrpcErrorTrailers.message);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(trailers?.getMap() ?? {})) {
    if (!key.startsWith(GrpcErrorTrailers.metaPrefix) || typeof value !== "string") continue;
    const name = decodeMetadataKey(key.slice(GrpcErrorTrailers.metaPrefix.length));
    if (name !== undefined) metadata[name] = decodeTrailerValue(value);
  }
  const message = rawMessage !== undefined ? decodeTrailerValue(rawMessage) : error.details || error.message || "";
  if (rawCode !== undefined) {
    return new OmniRelayError({ status, code: decodeTrailerValue(rawCode), message, metadata, cause: error });
  }
  const code =
    status === "unavailable"
      ? ErrorCodes.rpc.transportUnavailable
      : status === "deadline-exceeded"
        ? ErrorCodes.rpc.deadlineExceeded
        : status === "cancelled"
          ? ErrorCodes.rpc.cancelled
          : ErrorCodes.grpc.remoteFailed;
  const prefix = status === "unavailable" ? "The remote dispatcher could not be reached: " : "";
  return new OmniRelayError({ status, code, message: `${prefix}${message}`, metadata, cause: error });
}
