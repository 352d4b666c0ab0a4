import type { ServerWritableStream } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { MalformedMessage } from "./deserialize.js";
import type { ReplicationEvent, SubscribeRequest } from "./gen/omnirelay/replication/v1/hub.js";
import type { HubAuthorizer } from "./hub-auth.js";
import type { HubSource } from "./hub-source.js";
import { checkSourceId, type ReplicationSourceId } from "./source.js";
import { toServiceError, toWireEvent } from "./wire.js";

const SUBSCRIBE_PAGE = 256;

/**
 * Serves one Subscribe call, authorized against the caller's identity first: the stored events from `fromSequence`,
 * then (with `follow`) each new batch as it is stored, honouring the stream's flow control. Internal.
 */
export async function serveSubscribe(
  call: ServerWritableStream<SubscribeRequest, ReplicationEvent>,
  hub: {
    /** The open source, or throws its open error (failed) or not-found. */
    source(id: ReplicationSourceId): HubSource;
    open: Set<(error: OmniRelayError) => void>;
    authorizer: HubAuthorizer;
  },
): Promise<void> {
  const abort = new AbortController();
  const stop = (error: OmniRelayError): void => {
    if (abort.signal.aborted) return;
    abort.abort();
    call.emit("error", toServiceError(error));
  };
  call.on("cancelled", () => abort.abort());
  call.on("error", () => undefined);
  hub.open.add(stop);
  try {
    const request: unknown = call.request;
    if (request instanceof MalformedMessage) throw request.error("subscribe");
    const id = checkSourceId({ nodeId: call.request.nodeId, shard: call.request.shard });
    // Authorized before the lookup, so a caller without a grant cannot probe which sources exist.
    await hub.authorizer.authorize(call, { rpc: "subscribe", access: "read", nodeId: id.nodeId });
    const source = hub.source(id);
    let next = Math.max(1, call.request.fromSequence);
    while (!abort.signal.aborted) {
      const target = source.lastSequence;
      if (next <= target) {
        let sent = 0;
        for await (const event of source.log.read(next, Math.min(SUBSCRIBE_PAGE, target - next + 1))) {
          if (abort.signal.aborted) break;
          if (!call.write(toWireEvent(event))) await drained(call, abort.signal);
          next = event.sequenceNumber + 1;
          sent++;
        }
        if (sent === 0 && !abort.signal.aborted) {
          throw new OmniRelayError({
            status: "data-loss",
            code: ErrorCodes.replicationHub.storeFailed,
            message: `The log of ${source.key} no longer holds event ${next} (compacted?).`,
            metadata: { "replication.sequence": String(next) },
          });
        }
        continue;
      }
      if (!call.request.follow) break;
      await source.changed(abort.signal);
    }
    if (!abort.signal.aborted) {
      abort.abort();
      call.end();
    }
  } catch (error) {
    stop(error instanceof OmniRelayError ? error : OmniRelayError.from(error));
  } finally {
    hub.open.delete(stop);
  }
}

function drained(call: ServerWritableStream<SubscribeRequest, ReplicationEvent>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.on("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}
