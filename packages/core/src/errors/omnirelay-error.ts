import { ErrorCodes } from "./codes.js";
import { type OmniRelayStatus, parseStatus } from "./status.js";

const marker = Symbol.for("@omnirelay/core/OmniRelayError");

/** Constructor options of {@link OmniRelayError}. */
export interface OmniRelayErrorOptions {
  /** Transport-neutral status; decides the HTTP status and gRPC code. */
  status: OmniRelayStatus;
  /** Stable dotted code such as `resourcelease.lease.fenced`; OmniRelay's own are listed in `ErrorCodes`. */
  code: string;
  /** Human-readable message. */
  message: string;
  /** String metadata that travels with the error on every transport. */
  metadata?: Record<string, string>;
  /** The underlying error, if any. Never sent over the wire. */
  cause?: unknown;
}

/**
 * The one error type of OmniRelay. Every error that crosses a package or transport boundary is an
 * `OmniRelayError` with a transport status and a stable `code`.
 */
export class OmniRelayError extends Error {
  readonly status: OmniRelayStatus;
  readonly code: string;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(options: OmniRelayErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OmniRelayError";
    this.status = options.status;
    this.code = options.code;
    this.metadata = Object.freeze({ ...(options.metadata ?? {}) });
    Object.defineProperty(this, marker, { value: true });
  }

  /** True for any `OmniRelayError`, even one created by another copy of this package. */
  static is(value: unknown): value is OmniRelayError {
    return isOmniRelayError(value);
  }

  /**
   * The error of an invalid constructor (or `open`, `close`) option: invalid-argument `resourcelease.options.invalid`
   * with metadata `option` naming it. Every package builds its option errors here.
   * @param option - The option's name as the caller wrote it (`maxItems`, `tls.key`).
   * @param message - What is wrong with it; `Option '<option>' is invalid.` when left out.
   */
  static invalidOption(option: string, message = `Option '${option}' is invalid.`): OmniRelayError {
    return new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.resourceLease.optionsInvalid,
      message,
      metadata: { option },
    });
  }

  /**
   * Normalises anything thrown into an `OmniRelayError`. An `OmniRelayError` is returned as it is; an
   * `AbortError` becomes `cancelled`; anything else becomes `internal` with code `omnirelay.internal`.
   */
  static from(value: unknown, fallbackCode: string = ErrorCodes.rpc.internal): OmniRelayError {
    if (isOmniRelayError(value)) return value;
    if (value instanceof Error && (value.name === "AbortError" || value.name === "TimeoutError")) {
      const timeout = value.name === "TimeoutError";
      return new OmniRelayError({
        status: timeout ? "deadline-exceeded" : "cancelled",
        code: timeout ? ErrorCodes.rpc.deadlineExceeded : ErrorCodes.rpc.cancelled,
        message: value.message || (timeout ? "The operation timed out." : "The operation was cancelled."),
        cause: value,
      });
    }
    const message = value instanceof Error ? value.message : String(value);
    return new OmniRelayError({ status: "internal", code: fallbackCode, message, cause: value });
  }

  /**
   * Rebuilds an error from its wire form (`{status, code, message, metadata}`), as a remote sent it: each field is
   * taken only when it has its type — `status` a status name or gRPC code, `code` and `message` strings, `metadata` an
   * object whose values are all strings — and otherwise reads as absent (`unknown`, `omnirelay.unknown`,
   * `Unknown error.`, no metadata). It never throws.
   */
  static fromWire(body: { status?: unknown; code?: unknown; message?: unknown; metadata?: unknown }): OmniRelayError {
    const metadata = wireMetadata(body.metadata);
    return new OmniRelayError({
      status: parseStatus(body.status) ?? "unknown",
      code: typeof body.code === "string" ? body.code : ErrorCodes.rpc.unknown,
      message: typeof body.message === "string" ? body.message : "Unknown error.",
      ...(metadata ? { metadata } : {}),
    });
  }

  /** The wire form: `{status, code, message, metadata?}` with the status as its gRPC-vocabulary name. */
  toJSON(): { status: OmniRelayStatus; code: string; message: string; metadata?: Record<string, string> } {
    const out: { status: OmniRelayStatus; code: string; message: string; metadata?: Record<string, string> } = {
      status: this.status,
      code: this.code,
      message: this.message,
    };
    if (Object.keys(this.metadata).length > 0) out.metadata = { ...this.metadata };
    return out;
  }
}

/** Error metadata as a remote sent it: an object whose every value is a string (its own keys copied), else undefined. */
function wireMetadata(value: unknown): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") return undefined;
    if (key === "__proto__") continue;
    out[key] = v;
  }
  return out;
}

/** True for any `OmniRelayError`, across duplicate copies of `@omnirelay/core` (a `Symbol.for` marker). */
export function isOmniRelayError(value: unknown): value is OmniRelayError {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[marker] === true;
}
