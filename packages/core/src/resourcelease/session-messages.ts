import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseLimits as Limits } from "../wire/limits.js";
import { f, message, required, type WireMessage } from "../wire/message.js";
import { Grant, OwnershipToken } from "../wire/messages.js";

// The frames of a worker session (docs/protocol.md, "Worker sessions"): one long-lived stream per worker and shard
// that carries credit and settlements up, grants and answers down. Described once; the HTTP (WebSocket, JSON) and
// gRPC (protobuf) transports both read and write them with these.

/** Most operations of one kind (complete, fail, heartbeat) in one frame, and most grants in one frame. */
export const SESSION_MAX_OPS = 1000;

/** A heartbeat or a complete inside a session frame; `id` pairs it with its result. */
export interface SessionTokenOp {
  readonly id: number;
  readonly ownershipToken: ResourceLeaseOwnershipToken;
}

/** A fail inside a session frame: the fields of the `fail` verb plus `id`. */
export interface SessionFailOp extends SessionTokenOp {
  readonly reason?: string;
  readonly errorCode?: string;
  readonly requeue?: boolean;
  readonly delayMs?: number;
}

/**
 * What a worker sends: more `credit` (items it can take on top of what it asked for before), and settlements. A
 * completion and one credit in the same frame is "complete and lease the next": the settlement and the lease go
 * into the same log commit when the item is pending. An empty frame is a keep-alive.
 */
export interface SessionClientFrame {
  readonly credit?: number;
  readonly complete?: readonly SessionTokenOp[];
  readonly fail?: readonly SessionFailOp[];
  readonly heartbeat?: readonly SessionTokenOp[];
  /**
   * The worker is leaving: grant nothing more (the credit left is dropped, and credit sent later is ignored). The
   * dispatcher answers `stopped` once every grant it will send on this session has been sent; settlements go on.
   */
  readonly stop?: boolean;
}

/** The answer to one operation: success fields, or the error's `status`, `code` and `message`. */
export interface SessionResult {
  readonly id: number;
  /** Error status (an `OmniRelayStatus` name) when the operation failed. */
  readonly status?: string;
  readonly code?: string;
  readonly message?: string;
  /** A heartbeat's new deadline. */
  readonly leaseExpiresAt?: number;
  /** A heartbeat's server-measured remaining lease time. */
  readonly remainingMs?: number;
  /** A fail's outcome: `requeued`, `delayed` or `dead_lettered`. */
  readonly outcome?: string;
}

/** What the dispatcher sends: grants (each uses one credit), results, or the error that closes the session. */
export interface SessionServerFrame {
  readonly grants?: readonly ResourceLeaseGrant[];
  readonly results?: readonly SessionResult[];
  readonly error?: { readonly status: string; readonly code: string; readonly message: string };
  /** The answer to the worker's `stop`: no grant follows this frame. */
  readonly stopped?: boolean;
}

const code = ErrorCodes.rpc.sessionFrameInvalid;
const id = f.int({ min: 0, max: Number.MAX_SAFE_INTEGER, required: code, code });
const token = required(OwnershipToken, ErrorCodes.resourceLease.leaseTokenRequired);
const tokenOp = message<SessionTokenOp>({ id, ownershipToken: token }, { code });
const failOp = message<SessionFailOp>(
  {
    id,
    ownershipToken: token,
    reason: f.text({ max: Limits.errorMessageLength, code }),
    errorCode: f.text({ max: Limits.errorCodeLength, code }),
    requeue: f.bool(code),
    delayMs: f.int({ min: 0, max: 7 * 24 * 3_600_000, code }),
  },
  { code },
);

/** A worker's frame. */
export const SessionClientFrameMessage: WireMessage<SessionClientFrame> = message<SessionClientFrame>(
  {
    credit: f.int({ min: 0, max: 1_000_000, code }),
    complete: f.list(tokenOp.field, { max: SESSION_MAX_OPS, code }),
    fail: f.list(failOp.field, { max: SESSION_MAX_OPS, code }),
    heartbeat: f.list(tokenOp.field, { max: SESSION_MAX_OPS, code }),
    stop: f.bool(code),
  },
  { code, required: code },
);

const result = message<SessionResult>({
  id,
  status: f.text({ max: 64 }),
  code: f.text({ max: Limits.errorCodeLength }),
  message: f.text({ max: Limits.errorMessageLength }),
  leaseExpiresAt: f.time(),
  remainingMs: f.int({ min: 0 }),
  outcome: f.text({ max: 64 }),
});

const errorInfo = message<{ status: string; code: string; message: string }>({
  status: f.text({ max: 64, required: code }),
  code: f.text({ max: Limits.errorCodeLength, required: code }),
  message: f.text({ max: Limits.errorMessageLength, required: code }),
});

/** The dispatcher's frame. */
export const SessionServerFrameMessage: WireMessage<SessionServerFrame> = message<SessionServerFrame>(
  {
    grants: f.list(Grant.field, { max: SESSION_MAX_OPS, code }),
    results: f.list(result.field, { max: 3 * SESSION_MAX_OPS, code }),
    error: errorInfo.field,
    stopped: f.bool(code),
  },
  { code, required: code },
);

/** The error frame that closes a session. */
export function sessionErrorFrame(error: OmniRelayError): SessionServerFrame {
  return { error: { status: error.status, code: error.code, message: error.message } };
}
