import { Metadata, type ServerDuplexStream } from "@grpc/grpc-js";
import { type Dispatcher, ErrorCodes, type Logger, OmniRelayError, type RequestMeta } from "@omnirelay/core";
import {
  type OpenSessionOptions,
  openResourceLeaseSession,
  type ResourceLeaseSession,
  requestSite,
  SessionClientFrameMessage,
  type SessionLimits,
  SessionServerFrameMessage,
} from "@omnirelay/core/wire";
import { metadataToHeaders, transportSecurity } from "./call-meta.js";
import { MalformedRequest, OversizedRequest } from "./deserialize.js";
import { SessionServerFrame } from "./gen/omnirelay/resourcelease/v1/resourcelease.js";
import { toGrpcStatus } from "./status.js";

/** Options of the gRPC inbound's worker sessions. Internal. */
export interface GrpcSessionsOptions extends SessionLimits {
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly tls: boolean;
  /** Largest frame a worker may send (the inbound's `maxMessageBytes`; grpc-js's receive limit is higher). */
  readonly maxFrameBytes: number;
  /** Most bytes left unsent to a worker before its session is cut `omnirelay.session.slow`. @defaultValue 16 MiB */
  readonly maxBufferedBytes?: number;
  /** Most live sessions on the inbound. */
  readonly maxSessions: number;
  /** Most live sessions of one caller (principal, else verified certificate subject, else address). */
  readonly maxSessionsPerCaller: number;
}

type SessionCall = ServerDuplexStream<unknown, unknown>;

/**
 * Worker sessions on the `Session` rpc (docs/protocol.md, "Worker sessions"): the call's metadata passes the same
 * middleware as the unary verbs before anything else happens (a refusal ends the call with its status); the
 * dispatcher then sends empty initial metadata (the worker's "accepted"), and each message is one frame. A session
 * that ends with an error sends it as a last frame and ends the call with its status. Internal.
 */
export class GrpcSessions {
  private readonly o: GrpcSessionsOptions;
  private readonly live = new Set<ResourceLeaseSession>();
  private readonly caps: NonNullable<OpenSessionOptions["caps"]>;

  constructor(options: GrpcSessionsOptions) {
    this.o = options;
    this.caps = {
      maxSessions: options.maxSessions,
      maxSessionsPerCaller: options.maxSessionsPerCaller,
      live: { total: 0, perCaller: new Map() },
    };
  }

  /** Serves one `Session` call. */
  async serve(call: SessionCall, running: boolean): Promise<void> {
    const abort = new AbortController();
    let ended = false;
    const finish = (error?: OmniRelayError) => {
      if (ended) return;
      ended = true;
      abort.abort();
      if (error) call.emit("error", toGrpcStatus(error));
      else call.end();
    };
    call.on("error", () => {}); // a client that went away: the session ends on "cancelled"
    try {
      if (!running) {
        throw new OmniRelayError({
          status: "unavailable",
          code: ErrorCodes.rpc.inboundShuttingDown,
          message: "The server is shutting down.",
        });
      }
      const headers = metadataToHeaders(call.metadata);
      const namespace = headers["rpc-namespace"]?.trim() || "resourcelease";
      const meta: RequestMeta = {
        service: this.o.dispatcher.service,
        procedure: `${namespace}::lease`,
        transport: "grpc",
        encoding: "protobuf",
        headers,
        signal: abort.signal,
        security: transportSecurity(call as never, this.o.tls),
        ...(headers["rpc-caller"] ? { caller: headers["rpc-caller"] } : {}),
      };
      const session = await openResourceLeaseSession(this.o.dispatcher, {
        namespace,
        meta,
        caps: this.caps,
        ...(this.o.maxCredit !== undefined ? { maxCredit: this.o.maxCredit } : {}),
        ...(this.o.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.o.idleTimeoutMs } : {}),
        sink: {
          send: (frame) => {
            if (ended) return;
            call.write(SessionServerFrame.fromPartial(SessionServerFrameMessage.write(frame, "proto") as never));
            const limit = this.o.maxBufferedBytes ?? 16 * 1024 * 1024;
            if (call.writableLength > limit) {
              session.end(
                new OmniRelayError({
                  status: "resource-exhausted",
                  code: ErrorCodes.rpc.sessionSlow,
                  message: "The worker does not read its session.",
                  metadata: { limit: String(limit) },
                }),
              );
            }
          },
          close: (error) => {
            this.live.delete(session);
            finish(error);
          },
        },
      });
      if (call.cancelled) {
        session.end();
        return;
      }
      this.live.add(session);
      call.sendMetadata(new Metadata());
      call.on("data", (message: unknown) => this.receive(session, message));
      // The worker half-closed: it ended the session itself, and may still read. Nothing more is granted, and the
      // settlements it sent are answered before the session ends. A dropped connection ends the read side too, just
      // before "cancelled": handled on the next turn, so a cancellation that follows counts as what it is.
      call.on("end", () => setImmediate(() => session.finish()));
      call.on("cancelled", () => session.lost()); // the connection dropped (or keepalive closed it) under the call
    } catch (thrown) {
      const error = OmniRelayError.from(thrown);
      this.o.logger.debug({ code: error.code }, "Refused a worker session.");
      finish(error);
    }
  }

  /** Ends every session (the inbound is closing); workers keep their leases. */
  close(): void {
    const error = new OmniRelayError({
      status: "unavailable",
      code: ErrorCodes.rpc.inboundShuttingDown,
      message: "The server is shutting down.",
    });
    for (const session of [...this.live]) session.fail(error);
  }

  private receive(session: ResourceLeaseSession, message: unknown): void {
    if (message instanceof OversizedRequest) {
      session.fail(
        new OmniRelayError({
          status: "resource-exhausted",
          code: ErrorCodes.rpc.sessionFrameTooLarge,
          message: `A session frame holds at most ${message.limit} bytes.`,
          metadata: { limit: String(message.limit) },
        }),
      );
      return;
    }
    try {
      if (message instanceof MalformedRequest) throw message.error("Session");
      const frame = SessionClientFrameMessage.read(message, requestSite("", this.o.maxFrameBytes));
      session.receive(frame);
    } catch (thrown) {
      const cause = OmniRelayError.from(thrown);
      session.fail(
        new OmniRelayError({
          status: "invalid-argument",
          code: ErrorCodes.rpc.sessionFrameInvalid,
          message: `Invalid session frame: ${cause.message}`,
          metadata: { ...(cause.metadata?.field ? { field: cause.metadata.field } : {}), reason: cause.code },
        }),
      );
    }
  }
}
