import type { OmniRelayError } from "../errors/omnirelay-error.js";
import type { SessionClientFrame, SessionServerFrame } from "./session-messages.js";

/** How a worker opens a session on one transport (docs/protocol.md, "Worker sessions"). */
export interface SessionChannelOptions {
  /** The namespace (shard) to hold the session with. */
  readonly namespace: string;
  /** Sent as `Rpc-Caller`: the peer id every operation of the session acts as. */
  readonly caller?: string;
  /** Sent with the opening request (e.g. `authorization`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The dispatcher accepted the session. */
  readonly onOpen: () => void;
  /** A frame from the dispatcher, decoded and checked. */
  readonly onFrame: (frame: SessionServerFrame) => void;
  /** The session ended (refused, broken, closed by either side); called once, last. */
  readonly onClose: (error: OmniRelayError) => void;
}

/** One open (or opening) session stream. */
export interface SessionChannel {
  /** Sends a frame; ignored once the channel is closed. */
  send(frame: SessionClientFrame): void;
  /** Closes the stream (the dispatcher keeps every lease: they are renewed elsewhere or expire). */
  close(): void;
}

/** An outbound that can carry worker sessions besides unary calls (`HttpOutbound`, `GrpcOutbound`). */
export interface SessionOutbound {
  openSession(options: SessionChannelOptions): SessionChannel;
}

/** Whether an outbound can carry worker sessions. */
export function isSessionOutbound(outbound: unknown): outbound is SessionOutbound {
  return typeof (outbound as Partial<SessionOutbound> | undefined)?.openSession === "function";
}
