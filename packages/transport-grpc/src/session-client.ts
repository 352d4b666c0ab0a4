import type { Client, ClientDuplexStream, Metadata, ServiceError } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import {
  parseStatus,
  responseSite,
  type SessionChannel,
  type SessionChannelOptions,
  SessionClientFrameMessage,
  SessionServerFrameMessage,
} from "@omnirelay/core/wire";
import { ResourceLeaseServiceService, SessionClientFrame } from "./gen/omnirelay/resourcelease/v1/resourcelease.js";
import { fromGrpcError } from "./status.js";

/**
 * Opens a worker session on the `Session` rpc with `metadata` (the outbound's, plus `rpc-namespace` and
 * `rpc-caller`). The dispatcher's initial metadata says it accepted the session; a refusal ends the call with the
 * error's status. An `error` frame is the session's last: the channel closes with that error, the call is cancelled
 * and nothing after it is read. (A dispatcher that never sends the initial metadata is the worker's open timeout's
 * to end: it closes the channel, which cancels the call.) Internal to `GrpcOutbound`.
 */
export function openGrpcSession(client: Client, metadata: Metadata, options: SessionChannelOptions): SessionChannel {
  const method = ResourceLeaseServiceService.session;
  const call: ClientDuplexStream<unknown, unknown> = client.makeBidiStreamRequest(
    method.path,
    method.requestSerialize as (value: unknown) => Buffer,
    method.responseDeserialize,
    metadata,
    {},
  );
  let closed = false;
  const finish = (reason: OmniRelayError) => {
    if (closed) return;
    closed = true;
    options.onClose(reason);
  };
  call.on("metadata", () => {
    if (!closed) options.onOpen();
  });
  call.on("data", (message: unknown) => {
    if (closed) return;
    let frame: ReturnType<typeof SessionServerFrameMessage.read>;
    try {
      frame = SessionServerFrameMessage.read(message, responseSite());
      options.onFrame(frame);
    } catch (thrown) {
      finish(
        new OmniRelayError({
          status: "internal",
          code: ErrorCodes.grpc.responseInvalid,
          message: `The dispatcher sent an invalid session frame: ${OmniRelayError.from(thrown).message}`,
        }),
      );
      call.cancel();
      return;
    }
    if (frame.error) {
      // The last frame: the session ends with its error whether or not the dispatcher ends the call.
      finish(
        new OmniRelayError({
          status: parseStatus(frame.error.status) ?? "unknown",
          code: frame.error.code,
          message: frame.error.message,
        }),
      );
      call.cancel();
    }
  });
  call.on("error", (cause: ServiceError) => finish(fromGrpcError(cause)));
  call.on("status", () => finish(closedError("The session ended.")));
  call.on("end", () => finish(closedError("The session ended.")));
  return {
    send(frame) {
      if (closed) return;
      call.write(SessionClientFrame.fromPartial(SessionClientFrameMessage.write(frame, "proto") as never));
    },
    close() {
      finish(closedError("The session was closed by the worker."));
      call.cancel();
    },
  };
}

function closedError(message: string): OmniRelayError {
  return new OmniRelayError({ status: "unavailable", code: ErrorCodes.rpc.sessionClosed, message });
}
