import type { Client, ClientDuplexStream, Metadata, ServiceError } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import {
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
 * error's status. Internal to `GrpcOutbound`.
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
  let error: OmniRelayError | undefined;
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
    try {
      const frame = SessionServerFrameMessage.read(message, responseSite());
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
          code: ErrorCodes.grpc.responseInvalid,
          message: `The dispatcher sent an invalid session frame: ${OmniRelayError.from(thrown).message}`,
        }),
      );
      call.cancel();
    }
  });
  call.on("error", (cause: ServiceError) => finish(error ?? fromGrpcError(cause)));
  call.on("status", () => finish(error ?? closedError("The session ended.")));
  call.on("end", () => finish(error ?? closedError("The session ended.")));
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
