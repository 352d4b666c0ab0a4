import type { IncomingMessage } from "node:http";
import { WebSocket } from "ws";
import { decodeJsonBody } from "../../dispatcher/json-codec.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
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
}

/**
 * Opens a worker session over WebSocket: `GET {url}/omnirelay/session/{namespace}` upgraded, then one JSON frame
 * per text message each way. A refused upgrade closes the channel with the error the dispatcher answered.
 */
export function openHttpSession(target: HttpSessionTarget, options: SessionChannelOptions): SessionChannel {
  const base = new URL(target.url);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = `${base.pathname.replace(/\/$/, "")}${SESSION_PATH}${encodeURIComponent(options.namespace)}`;
  const headers: Record<string, string> = { ...target.headers, ...options.headers };
  if (options.caller) headers["rpc-caller"] = options.caller;
  let closed = false;
  let error: OmniRelayError | undefined;
  const finish = (reason: OmniRelayError) => {
    if (closed) return;
    closed = true;
    options.onClose(reason);
  };
  const ws = new WebSocket(base, {
    headers,
    maxPayload: target.maxFrameBytes,
    perMessageDeflate: false,
    ...(target.tls ?? {}),
  });
  ws.on("unexpected-response", (_req, res: IncomingMessage) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("end", () => {
      finish(readError(res.statusCode ?? 500, res.headers, Buffer.concat(chunks)));
      ws.terminate();
    });
    res.on("error", () => finish(closedError("The session upgrade was cut.")));
  });
  ws.on("open", () => {
    if (!closed) options.onOpen();
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (closed) return;
    try {
      if (isBinary) throw new TypeError("binary frame");
      const frame = SessionServerFrameMessage.read(decodeJsonBody(data), responseSite());
      if (frame.error) {
        error = new OmniRelayError({
          status: frame.error.status as OmniRelayError["status"],
          code: frame.error.code,
          message: frame.error.message,
        });
      }
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
    }
  });
  ws.on("error", (cause) => finish(closedError(`The session failed: ${cause.message}`)));
  ws.on("close", (code, reason) => finish(error ?? closedError(`The session closed (${code} ${reason.toString()}).`)));
  return {
    send(frame) {
      if (closed || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify(SessionClientFrameMessage.write(frame, "json")));
    },
    close() {
      finish(closedError("The session was closed by the worker."));
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
  };
}

function closedError(message: string): OmniRelayError {
  return new OmniRelayError({ status: "unavailable", code: ErrorCodes.rpc.sessionClosed, message });
}
