import type { IncomingMessage } from "node:http";
import { WebSocket } from "ws";
import { decodeJsonBody } from "../../dispatcher/json-codec.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { parseStatus } from "../../errors/status.js";
import type { SessionChannel, SessionChannelOptions } from "../../resourcelease/session-channel.js";
import { SessionClientFrameMessage, SessionServerFrameMessage } from "../../resourcelease/session-messages.js";
import { responseSite } from "../../wire/site.js";
import { readError } from "./errors.js";
import type { HttpOutboundTlsOptions } from "./outbound.js";
import { SESSION_PATH } from "./session-server.js";

/** Where and how an HTTP session connects. Internal to `HttpOutbound`. */
export interface HttpSessionTarget {
  readonly url: URL;
  readonly tls?: HttpOutboundTlsOptions;
  readonly headers: Readonly<Record<string, string>>;
  /** Largest frame accepted from the dispatcher. */
  readonly maxFrameBytes: number;
  /**
   * A session not accepted (`101`) or refused (the refusal's body read) within this long is closed deadline-exceeded
   * `omnirelay.deadline_exceeded`: a dispatcher that takes the connection and never answers the upgrade holds no one
   * forever. A backstop: `ResourceLeaseWorker` gives up sooner, after its `sessionOpenTimeoutMs` (10 s by default).
   * @defaultValue 30000
   */
  readonly openTimeoutMs?: number;
}

/** The most of a refused upgrade's body read: an error body is small; the rest is neither buffered nor waited for. */
export const REFUSAL_BODY_MAX_BYTES = 64 * 1024;

/** The default of {@link HttpSessionTarget.openTimeoutMs}. */
const OPEN_TIMEOUT_MS = 30_000;

/**
 * Opens a worker session over WebSocket: `GET {url}/omnirelay/session/{namespace}` upgraded, then one JSON frame
 * per text message each way. A refused upgrade closes the channel with the error the dispatcher answered (read from
 * the headers and at most {@link REFUSAL_BODY_MAX_BYTES} of the body). An `error` frame is the session's last: the
 * channel closes with that error and reads nothing after it.
 */
export function openHttpSession(target: HttpSessionTarget, options: SessionChannelOptions): SessionChannel {
  const base = new URL(target.url);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = `${base.pathname.replace(/\/$/, "")}${SESSION_PATH}${encodeURIComponent(options.namespace)}`;
  const headers: Record<string, string> = { ...target.headers, ...options.headers };
  if (options.caller) headers["rpc-caller"] = options.caller;
  let closed = false;
  let refusal: IncomingMessage | undefined;
  const openTimeoutMs = target.openTimeoutMs ?? OPEN_TIMEOUT_MS;
  const openTimer = setTimeout(() => {
    finish(openTimeoutError(openTimeoutMs));
    stop();
  }, openTimeoutMs);
  openTimer.unref?.();
  const finish = (reason: OmniRelayError) => {
    clearTimeout(openTimer);
    if (closed) return;
    closed = true;
    options.onClose(reason);
  };
  /** Drops the connection at once (a refusal's body included). */
  const stop = () => {
    refusal?.destroy();
    ws.terminate();
  };
  const ws = new WebSocket(base, {
    headers,
    maxPayload: target.maxFrameBytes,
    perMessageDeflate: false,
    ...(target.tls ?? {}),
  });
  ws.on("unexpected-response", (_req, res: IncomingMessage) => {
    refusal = res;
    const chunks: Buffer[] = [];
    let bytes = 0;
    const refused = () => {
      finish(refusalError(res, Buffer.concat(chunks)));
      stop();
    };
    res.on("data", (chunk: Buffer) => {
      if (closed) return;
      chunks.push(chunk.subarray(0, REFUSAL_BODY_MAX_BYTES - bytes));
      bytes += chunk.length;
      if (bytes >= REFUSAL_BODY_MAX_BYTES) refused(); // enough to read an error; the rest is not waited for
    });
    res.on("end", refused);
    res.on("error", () => finish(closedError("The session upgrade was cut.")));
  });
  ws.on("open", () => {
    clearTimeout(openTimer);
    if (!closed) options.onOpen();
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (closed) return;
    let frame: ReturnType<typeof SessionServerFrameMessage.read>;
    try {
      if (isBinary) throw new TypeError("binary frame");
      frame = SessionServerFrameMessage.read(decodeJsonBody(data), responseSite());
      options.onFrame(frame);
    } catch (thrown) {
      finish(
        new OmniRelayError({
          status: "internal",
          code: ErrorCodes.rpc.responseInvalid,
          message: `The dispatcher sent an invalid session frame: ${OmniRelayError.from(thrown).message}`,
        }),
      );
      ws.terminate();
      return;
    }
    if (frame.error) {
      // The last frame: the session ends with its error whether or not the dispatcher closes the socket, and nothing
      // it sends after is read (a grant after it is not run).
      finish(frameError(frame.error));
      ws.close(1000);
    }
  });
  ws.on("error", (cause) => finish(closedError(`The session failed: ${cause.message}`)));
  ws.on("close", (code, reason) => finish(closedError(`The session closed (${code} ${reason.toString()}).`)));
  return {
    send(frame) {
      if (closed || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify(SessionClientFrameMessage.write(frame, "json")));
    },
    close() {
      finish(closedError("The session was closed by the worker."));
      refusal?.destroy();
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
  };
}

/** The error a refused upgrade answered; never throws (a body it cannot read gives the HTTP status's error). */
function refusalError(res: IncomingMessage, body: Buffer): OmniRelayError {
  const httpStatus = res.statusCode ?? 500;
  try {
    return readError(httpStatus, res.headers, body);
  } catch {
    try {
      return readError(httpStatus, res.headers, Buffer.alloc(0));
    } catch (thrown) {
      return closedError(`The session was refused (HTTP ${httpStatus}).`, thrown);
    }
  }
}

/** The error of an `error` frame, its status parsed (a wire name such as `INVALID_ARGUMENT` included). */
function frameError(error: { readonly status: string; readonly code: string; readonly message: string }) {
  return new OmniRelayError({
    status: parseStatus(error.status) ?? "unknown",
    code: error.code,
    message: error.message,
  });
}

function openTimeoutError(timeoutMs: number): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.deadlineExceeded,
    message: `The session did not open within ${timeoutMs} ms.`,
    metadata: { timeoutMs: String(timeoutMs) },
  });
}

function closedError(message: string, cause?: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.rpc.sessionClosed,
    message,
    ...(cause !== undefined ? { cause } : {}),
  });
}
