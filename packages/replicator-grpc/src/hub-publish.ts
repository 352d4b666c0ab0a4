import type { ServerDuplexStream } from "@grpc/grpc-js";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { MalformedMessage } from "./deserialize.js";
import type { PublishAck, PublishRequest } from "./gen/omnirelay/replication/v1/hub.js";
import { describeIdentity, type HubAuthorizer } from "./hub-auth.js";
import type { HubSource, SourceWriter } from "./hub-source.js";
import { checkSourceId, type ReplicationSourceId } from "./source.js";
import { toServiceError } from "./wire.js";

/** What a Publish stream needs from its hub. Internal. */
export interface PublishContext {
  readonly open: Set<(error: OmniRelayError) => void>;
  readonly authorizer: HubAuthorizer;
  readonly busySourceWaitMs: number;
  source(id: ReplicationSourceId): Promise<HubSource>;
}

/**
 * Serves one Publish stream: a hello (authorized against the caller's identity before any log is opened, then
 * attached as the source's one stream), then batches, each answered with the cumulative ack. Internal.
 */
export function servePublish(call: ServerDuplexStream<PublishRequest, PublishAck>, hub: PublishContext): void {
  let source: HubSource | undefined;
  let caller = "anonymous";
  let greeted = false;
  let done = false;
  let queued = 0;
  let chain: Promise<void> = Promise.resolve();
  const abort = new AbortController();
  const writer: SourceWriter = {};
  const finish = (error?: unknown): void => {
    if (done) return;
    done = true;
    abort.abort();
    hub.open.delete(finish);
    source?.detach(writer);
    if (error === undefined) call.end();
    else call.emit("error", toServiceError(error));
  };
  hub.open.add(finish);
  const hello = async (message: NonNullable<PublishRequest["hello"]>): Promise<void> => {
    greeted = true;
    const id = checkSourceId({ nodeId: message.nodeId, shard: message.shard });
    const identity = await hub.authorizer.authorize(call, { rpc: "publish", access: "publish", nodeId: id.nodeId });
    caller = describeIdentity(identity);
    const opened = await hub.source(id);
    if (done) return;
    await opened.attach(writer, { waitMs: hub.busySourceWaitMs, signal: abort.signal });
    source = opened;
    if (done) {
      opened.detach(writer);
      return;
    }
    opened.noteHead(message.headSequence);
    call.write({ ackedSequence: opened.lastSequence });
  };
  const handle = async (message: PublishRequest | MalformedMessage): Promise<void> => {
    if (message instanceof MalformedMessage) throw message.error("publish");
    if (message.hello && !greeted) {
      await hello(message.hello);
    } else if (message.batch && source) {
      source.noteHead(message.batch.headSequence);
      const acked = await source.append(message.batch.events, caller);
      if (!done) call.write({ ackedSequence: acked });
    } else {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.replicationHub.protocol,
        message: "A publish stream sends one hello first, then batches.",
        metadata: { field: message.hello ? "hello" : "batch" },
      });
    }
  };
  call.on("data", (message: PublishRequest | MalformedMessage) => {
    if (done) return;
    queued++;
    // Flow control: stop reading while batches wait for the log, so a fast source cannot fill the hub's memory.
    if (queued >= 8) call.pause();
    chain = chain.then(async () => {
      try {
        if (!done) await handle(message);
      } catch (error) {
        finish(error);
      } finally {
        queued--;
        if (queued <= 2 && call.isPaused()) call.resume();
      }
    });
  });
  call.on("end", () => {
    void chain.then(() => finish());
  });
  call.on("cancelled", () => {
    done = true;
    abort.abort();
    hub.open.delete(finish);
    source?.detach(writer);
  });
  call.on("error", () => undefined);
}
