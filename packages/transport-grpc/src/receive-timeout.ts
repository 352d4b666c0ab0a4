import { constants } from "node:http2";
import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { toGrpcStatus } from "./status.js";

/**
 * A server interceptor that ends a unary call whose request has not fully arrived (its message and the end of its
 * stream) within `limitMs` of the call's start: `DEADLINE_EXCEEDED` `omnirelay.request.timeout`, as the HTTP
 * inbound's `requestTimeoutMs`. grpc-js buffers a message until its last byte, so without it a client that sends all
 * but the last byte of a large message holds that memory for as long as it keeps the stream open. The status goes
 * out as a complete response, then the stream is reset with `NO_ERROR` — how HTTP/2 asks a client to stop sending a
 * request that has been answered (RFC 9113 §8.1) — so the stream closes and what grpc-js held of it is dropped.
 * Streaming calls (sessions) are left alone: their frames arrive over the life of the call. Internal.
 */
export function receiveTimeout(limitMs: number): ServerInterceptor {
  return (method, call) => {
    if (method.requestStream) return new ServerInterceptingCall(call);
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          timer = undefined;
          call.sendStatus(toGrpcStatus(requestTimeout(limitMs)));
          const stream = http2StreamOf(call);
          // Node sends the reset once the response is written.
          if (stream && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
        }, limitMs);
        timer.unref();
        next({
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
 * The HTTP/2 stream under a server call: grpc-js's innermost call object keeps it as `stream` (not part of its
 * typed API, so looked up defensively: `undefined` when a grpc-js version keeps it elsewhere; the status still ends
 * the call then, and the stream closes when the client ends or resets it).
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

function requestTimeout(limitMs: number): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.requestTimeout,
    message: `The request was not received within ${limitMs} ms.`,
    metadata: { limitMs: String(limitMs) },
  });
}
