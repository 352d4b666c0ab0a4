import type { UnaryOutbound } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import type { OmniRelayError } from "../errors/omnirelay-error.js";

/** A dispatcher node a `ResourceLeaseClient` may send its calls to. */
export interface ResourceLeaseEndpoint {
  /**
   * The node's URL, spelled as the nodes name each other in `resourcelease.not_owner` answers (metadata
   * `ownerUrl`), e.g. `http://10.0.0.5:8080`.
   */
  readonly url: string;
  /** How calls reach it. @defaultValue the client's `connect(url)` */
  readonly outbound?: UnaryOutbound;
}

/** Why a client moved its calls from one endpoint to another (see `ResourceLeaseClientOptions.onEndpointChange`). */
export interface ResourceLeaseEndpointChange {
  /** The endpoint calls went to. */
  readonly from: string;
  /** The endpoint later calls go to. */
  readonly to: string;
  /**
   * `not_owner`: the node no longer owns the shard (it named `to`, or named nobody and `to` is the next endpoint);
   * `unavailable`: the node could not be reached or is shutting down; `not_served`: the node does not serve the
   * namespace (yet), met while looking for the owner.
   */
  readonly reason: "not_owner" | "unavailable" | "not_served";
  /** The answer that moved the client. */
  readonly error: OmniRelayError;
}

/** Backoff between rounds over every endpoint while no node serves the shard (a failover in progress). */
export interface ResourceLeaseFailoverOptions {
  /** First pause after a round of endpoints found no owner. @defaultValue 50 */
  readonly initialDelayMs?: number;
  /** Longest pause; the pauses double up to it (with jitter) and never pass the call's deadline. @defaultValue 1000 */
  readonly maxDelayMs?: number;
}

/** What one failed attempt tells the router. Internal. */
export type AttemptVerdict =
  /** Not a routing matter: the caller gets the error. */
  | { readonly kind: "answer" }
  /** The shard lives elsewhere; `url` names the owner when known. `safe`: the refused call changed nothing. */
  | {
      readonly kind: "move";
      readonly reason: ResourceLeaseEndpointChange["reason"];
      readonly url?: string;
      readonly safe: boolean;
    };

/** Server answers that refuse a call before the queue applies anything, so it may go to another node as it is. */
const refusedBeforeApplying: ReadonlySet<string> = new Set([
  ErrorCodes.resourceLease.queueClosed,
  ErrorCodes.rpc.inboundShuttingDown,
]);

/** Error codes of Node's sockets that mean no connection was made, so no request was sent. */
const notConnectedCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * grpc-js says "No connection established" when a call failed because its channel never connected: the call was not
 * sent. Its messages carry the socket error otherwise.
 */
const notConnectedText = /No connection established|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH/;

/**
 * True when `error` proves the request never reached a server: the transport could not connect. Only then may a
 * call that is not idempotent be sent again elsewhere. Internal.
 */
export function provablyNotSent(error: OmniRelayError): boolean {
  if (error.code !== ErrorCodes.rpc.transportUnavailable) return false;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const { code, message, details } = current as { code?: unknown; message?: unknown; details?: unknown };
    if (typeof code === "string" && notConnectedCodes.has(code)) return true;
    for (const text of [message, details]) if (typeof text === "string" && notConnectedText.test(text)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Reads a failed attempt: `resourcelease.not_owner` moves to the named owner (or on), and is always safe to send
 * again — the node refused before applying, or its log refused the append and stored nothing. A closed queue or a
 * shutting-down node is the same without a name. Any other `unavailable` moves on (but `resourcelease.draining`,
 * an operator's state, is an answer); it is safe to send again only when the request provably never left.
 * `omnirelay.procedure.not_found` moves on too: a node that does not serve the namespace may not have taken the shard
 * over yet (the router gives that answer back when every endpoint gave it). Internal.
 */
export function judgeAttempt(error: OmniRelayError): AttemptVerdict {
  if (error.code === ErrorCodes.resourceLease.notOwner) {
    const url = error.metadata.ownerUrl?.trim();
    return { kind: "move", reason: "not_owner", safe: true, ...(url ? { url } : {}) };
  }
  if (refusedBeforeApplying.has(error.code)) return { kind: "move", reason: "unavailable", safe: true };
  if (error.status === "unavailable" && error.code !== ErrorCodes.resourceLease.draining) {
    return { kind: "move", reason: "unavailable", safe: provablyNotSent(error) };
  }
  if (error.code === ErrorCodes.rpc.procedureNotFound) {
    return { kind: "move", reason: "not_served", safe: true };
  }
  return { kind: "answer" };
}
