import { constants } from "node:http2";
import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { toServiceError } from "./wire.js";

/**
 * A server interceptor that ends a Publish stream whose hello (its first message) has not fully arrived within
 * `limitMs` of the stream's start: `DEADLINE_EXCEEDED` `omnirelay.request.timeout` (metadata `limitMs`), as the gRPC
 * transport does for a slow unary request. Without it a caller that opens streams and never says hello (or sends all
 * but the last byte of one, which grpc-js buffers) holds each stream, its buffers and its socket for as long as it
 * answers keepalive pings. The status goes out, then the stream is reset with `NO_ERROR` (how HTTP/2 asks a client
 * to stop sending, RFC 9113 §8.1), so what grpc-js held of it is dropped even if the caller never reads the status.
 * The handler sees the call cancelled. After the hello a stream may stay quiet: a source with nothing to publish is
 * idle, and a dead peer is dropped by the keepalive. Other rpcs are left alone. Internal.
 */
export function helloTimeout(limitMs: number): ServerInterceptor {
  return (method, call) => {
    if (!(method.requestStream && method.responseStream)) return new ServerInterceptingCall(call);
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          timer = undefined;
          const { code, details, metadata } = toServiceError(noHello(limitMs));
          call.sendStatus({ code: code ?? 4, details: details ?? "", metadata: metadata ?? null });
          const stream = http2StreamOf(call);
          // Node sends the reset once the status is written.
          if (stream && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
        }, limitMs);
        // A pending hello must not keep a closing process alive; close() ends the stream anyway.
        timer.unref();
        next({
          onReceiveMessage: (message, proceed) => {
            stop();
            proceed(message);
          },
          onReceiveHalfClose: (proceed) => {
            stop();
            proceed();
          },
          onCancel: stop,
        });
      },
      sendStatus: (status, proceed) => {
        stop();
        proceed(status);
      },
    });
  };
}

/** The shape of the HTTP/2 stream under a call that {@link http2StreamOf} needs. */
interface ClosableStream {
  readonly closed: boolean;
  close(code: number): void;
}

/**
 * The HTTP/2 stream under a server call: grpc-js's innermost call object keeps it as `stream` (not part of its typed
 * API, so looked up defensively: `undefined` when a grpc-js version keeps it elsewhere; the status still ends the
 * call then, and the stream closes when the client ends or resets it).
 */
function http2StreamOf(call: ServerInterceptingCallInterface): ClosableStream | undefined {
  let current: unknown = call;
  for (let depth = 0; depth < 16 && typeof current === "object" && current !== null; depth++) {
    const { stream, nextCall } = current as { stream?: unknown; nextCall?: unknown };
    if (typeof stream === "object" && stream !== null && typeof (stream as ClosableStream).close === "function") {
      return stream as ClosableStream;
    }
    current = nextCall;
  }
  return undefined;
}

function noHello(limitMs: number): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.requestTimeout,
    message: `A publish stream must send its hello within ${limitMs} ms of opening.`,
    metadata: { limitMs: String(limitMs) },
  });
}
