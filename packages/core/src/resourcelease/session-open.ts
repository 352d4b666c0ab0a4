import type { Logger } from "../contracts/health.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { readRequestDeadline } from "../middleware/deadline-headers.js";
import { longPollCaller } from "../middleware/long-polls.js";
import type { PeerLeaseHealthTracker } from "../peers/index.js";
import type { QueueEngine } from "../queue/engine.js";
import type { ResourceLeaseCallContext } from "../queue/types.js";
import { ResourceLeaseSession } from "./session.js";
import type { SessionServerFrame } from "./session-messages.js";

// Opening a worker session: the namespaces components serve, and the checks a session passes at open. Internal.

/** What a session needs from the component that serves its namespace. Internal. */
export interface SessionHost {
  readonly engine: QueueEngine;
  readonly tracker: PeerLeaseHealthTracker | undefined;
  readonly logger: Logger;
  context(meta: RequestMeta): ResourceLeaseCallContext;
}

/** Where a session's frames go, and how it is closed, on one transport. */
export interface SessionSink {
  send(frame: SessionServerFrame): void;
  /** Ends the stream; `error` (already sent as an error frame) says why, none for a normal end. */
  close(error?: OmniRelayError): void;
}

/** Limits of a worker session. */
export interface SessionLimits {
  /** Most credit a session may hold (granted and not yet used). @defaultValue 1000 */
  readonly maxCredit?: number;
  /** A session that sends nothing (not even a keep-alive) for this long is closed `omnirelay.session.idle`. @defaultValue 60000 */
  readonly idleTimeoutMs?: number;
  /**
   * The transport pings the worker this often (a WebSocket ping; HTTP/2 keepalive pings on gRPC); a worker that does
   * not answer before the next ping is cut off: its session ends `omnirelay.session.idle`, so no more grants go into
   * a link that is down, and its peer is marked disconnected. An answer keeps an idle worker's peer healthy.
   * @defaultValue 10000
   */
  readonly pingIntervalMs?: number;
}

/**
 * Caps on the live sessions of one inbound, and its counts: one object per inbound, shared by every session it
 * opens (a transport starts it with `live: { total: 0, perCaller: new Map() }`). A caller is counted as its long
 * polls are: its principal, else the subject of its verified client certificate, else its remote address.
 */
export interface SessionCaps {
  /** Most live sessions on the inbound. */
  readonly maxSessions: number;
  /** Most live sessions of one caller. */
  readonly maxSessionsPerCaller: number;
  /** Live sessions: in all, and per caller key (an entry goes with the caller's last session). */
  readonly live: { total: number; readonly perCaller: Map<string, number> };
}

/** Options of {@link openResourceLeaseSession}. */
export interface OpenSessionOptions extends SessionLimits {
  readonly namespace: string;
  /** The stream's metadata as a transport read it (any `procedure`: it is set per verb for the checks). */
  readonly meta: RequestMeta;
  readonly sink: SessionSink;
  /** The inbound's live-session caps; a session takes a place once the middleware passed it, until it ends. */
  readonly caps?: SessionCaps;
}

/** The verbs a session acts as; opening one passes each verb's middleware (auth, authorization, rate limits). */
export const SESSION_VERBS = ["lease", "heartbeat", "complete", "fail"] as const;

const hosts = new WeakMap<Dispatcher, Map<string, SessionHost>>();

/** Makes a component's namespace reachable by sessions. Internal: the component calls it. */
export function registerSessionHost(dispatcher: Dispatcher, namespace: string, host: SessionHost): void {
  const map = hosts.get(dispatcher) ?? new Map<string, SessionHost>();
  hosts.set(dispatcher, map);
  map.set(namespace.toLowerCase(), host);
}

/**
 * Opens a worker session on `namespace` for a transport: the stream's metadata passes the middleware of
 * `{namespace}::lease`, `::heartbeat`, `::complete` and `::fail` (so authentication and authorization are those of
 * the unary verbs), then every operation the session carries acts as that peer and principal.
 * With `caps`, a session over the inbound's or its caller's cap is refused once the middleware passed it; its place
 * is given back when it ends (the sink is closed).
 * @throws OmniRelayError what the middleware refuses with (unauthenticated, permission-denied, …); unimplemented
 * `omnirelay.procedure.not_found` when no component serves the namespace; resource-exhausted
 * `omnirelay.session.too_many` (metadata `limit`, `scope`) over a cap.
 */
export async function openResourceLeaseSession(
  dispatcher: Dispatcher,
  options: OpenSessionOptions,
): Promise<ResourceLeaseSession> {
  const host = hosts.get(dispatcher)?.get(options.namespace.toLowerCase());
  if (!host) {
    throw new OmniRelayError({
      status: "unimplemented",
      code: ErrorCodes.rpc.procedureNotFound,
      message: `No resourcelease component serves namespace '${options.namespace}'.`,
      metadata: { procedure: `${options.namespace}::lease` },
    });
  }
  // A session has no deadline (it lasts until either side ends it), but a malformed deadline header is refused as on
  // a unary call: a caller's mistake is named, not ignored.
  readRequestDeadline(options.meta.headers, { now: dispatcher.clock.now() });
  let admitted: RequestMeta | undefined;
  for (const verb of SESSION_VERBS) {
    const meta = await dispatcher.admit({ ...options.meta, procedure: `${options.namespace}::${verb}` });
    admitted ??= meta;
  }
  const meta = admitted as RequestMeta;
  const release = options.caps ? takeSessionPlace(options.caps, meta) : undefined;
  if (!release) return new ResourceLeaseSession({ ...options, host, meta });
  const sink: SessionSink = {
    send: (frame) => options.sink.send(frame),
    close: (error) => {
      release();
      options.sink.close(error);
    },
  };
  try {
    return new ResourceLeaseSession({ ...options, host, meta, sink });
  } catch (error) {
    release();
    throw error;
  }
}

/** Takes a place for a session of `meta`'s caller: its release (idempotent), or the refusal when none is left. */
function takeSessionPlace(caps: SessionCaps, meta: RequestMeta): () => void {
  const { live } = caps;
  const key = longPollCaller(meta).key;
  const held = live.perCaller.get(key) ?? 0;
  const refusal = (scope: "inbound" | "caller", limit: number) =>
    new OmniRelayError({
      status: "resource-exhausted",
      code: ErrorCodes.rpc.sessionTooMany,
      message:
        scope === "inbound"
          ? `The server holds ${limit} worker sessions already.`
          : `This caller holds ${limit} worker sessions already.`,
      metadata: { limit: String(limit), scope },
    });
  if (held >= caps.maxSessionsPerCaller) throw refusal("caller", caps.maxSessionsPerCaller);
  if (live.total >= caps.maxSessions) throw refusal("inbound", caps.maxSessions);
  live.total++;
  live.perCaller.set(key, held + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    live.total--;
    const left = (live.perCaller.get(key) ?? 1) - 1;
    if (left > 0) live.perCaller.set(key, left);
    else live.perCaller.delete(key);
  };
}
