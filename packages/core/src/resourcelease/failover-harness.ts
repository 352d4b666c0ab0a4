import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseQueue } from "../queue/queue.js";
import { InMemoryResourceLeaseEventLog } from "../replication/in-memory-event-log.js";
import { HttpInbound } from "../transport/http/inbound.js";
import { ResourceLeaseDispatcherComponent } from "./component.js";

// Test fixture of the failover tests: dispatcher nodes with real HTTP inbounds on free loopback ports, sharing one
// durable log. The node that owns the shard serves a queue whose replicator is the log; a takeover stops the old
// owner's queue with resourcelease.not_owner (as an ownership guard does) and rebuilds the new owner's queue from the
// log, keeping active leases — what an owned JetStream queue does, without NATS.

/** One dispatcher node; it serves the shard once {@link FailoverNode.serve} ran. */
export interface FailoverNode {
  readonly name: string;
  readonly url: string;
  readonly dispatcher: Dispatcher;
  queue: ResourceLeaseQueue | undefined;
  /** Serves `queue` as the default namespace. */
  serve(queue: ResourceLeaseQueue): void;
  /** Stops listening (later connections are refused). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a node listening on a free port of 127.0.0.1, serving nothing yet. */
export async function startNode(name: string): Promise<FailoverNode> {
  const dispatcher = new Dispatcher({ service: `failover-${name}` });
  const inbound = new HttpInbound({ dispatcher });
  const { url } = await inbound.start();
  let component: ResourceLeaseDispatcherComponent | undefined;
  const node: FailoverNode = {
    name,
    url,
    dispatcher,
    queue: undefined,
    serve(queue) {
      component = new ResourceLeaseDispatcherComponent(dispatcher, { queue });
      node.queue = queue;
    },
    kill: () => inbound.close({ graceMs: 50 }),
    async close() {
      await inbound.close({ graceMs: 50 });
      await component?.close();
      await dispatcher.stop();
    },
  };
  return node;
}

/** The error an ownership guard stops a queue with: `owner` names the new owner (or nobody, `undefined`). */
export function notOwner(owner: FailoverNode | undefined): OmniRelayError {
  return new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.resourceLease.notOwner,
    message: owner ? `Node ${owner.name} owns the shard now.` : "Nobody owns the shard right now.",
    metadata: { owner: owner?.name ?? "", ownerUrl: owner?.url ?? "", shard: "resourcelease" },
  });
}

/** A shared log and the queue options every node uses. */
export function sharedLog(leaseDurationMs: number) {
  const log = new InMemoryResourceLeaseEventLog();
  return {
    log,
    /** The first owner's queue: empty, writing to the log. */
    fresh: () => new ResourceLeaseQueue({ replicator: log, leaseDurationMs }),
    /** A new owner's queue: rebuilt from the log, active leases kept, writing to the log. */
    takeOver: () =>
      ResourceLeaseQueue.rebuild(log.read(1), { replicator: log, leaseDurationMs }, { activeLeases: "keep" }),
    /** Every event of the log. */
    async events(): Promise<ResourceLeaseReplicationEvent[]> {
      const out: ResourceLeaseReplicationEvent[] = [];
      for await (const e of log.read(1)) out.push(e);
      return out;
    },
  };
}

/** How many events of `type` name each item (by sequence id). */
export function perItem(events: readonly ResourceLeaseReplicationEvent[], type: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const e of events) {
    if (e.eventType !== type) continue;
    const id = e.ownership?.sequenceId ?? e.item?.sequenceId;
    if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
