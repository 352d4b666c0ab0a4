import { randomUUID } from "node:crypto";
import {
  type CallOptions,
  ErrorCodes,
  isOmniRelayError,
  OmniRelayError,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { type ConformanceEventLog, describeEventLogConformance } from "@omnirelay/core/testing";
import { describe, it } from "vitest";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
  type ReplicationHubStore,
  type ReplicationSourceId,
} from "../src/index.js";

const test = { describe, it };

/**
 * One source at a hub, seen as an event log over the wire: `publish` streams through a `GrpcResourceLeaseReplicator`
 * (resolving when the hub acknowledged), `read` is a Subscribe without follow, `lastSequence` the hub's checkpoint.
 * What a dispatcher publishes must come back from the hub exactly, in order — the promise this package makes.
 */
class HubSourceLog implements ConformanceEventLog {
  constructor(
    private readonly replicator: GrpcResourceLeaseReplicator,
    private readonly client: GrpcReplicationHubClient,
    private readonly source: ReplicationSourceId,
  ) {}

  publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void> {
    return this.replicator.publish(events, options);
  }

  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: "resourcelease.argument.invalid",
        message: "limit must be an integer >= 0.",
      });
    }
    const { client, source } = this;
    return (async function* () {
      if (limit === 0) return;
      let count = 0;
      try {
        for await (const event of client.subscribe({ source, fromSequence, follow: false })) {
          yield event;
          if (limit !== undefined && ++count >= limit) return;
        }
      } catch (error) {
        // The hub opens a source's log when its first publish stream arrives: until then it has stored nothing.
        if (!isNotFound(error)) throw error;
      }
    })();
  }

  async lastSequence(): Promise<number> {
    try {
      return (await this.client.checkpoint(this.source)).lastSequence;
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
  }
}

const isNotFound = (error: unknown) =>
  isOmniRelayError(error) && error.code === ErrorCodes.replicationHub.sourceNotFound;

/** A hub on loopback over `store`, a replicator publishing as `source` and a client reading it. */
async function hubLog(store: ReplicationHubStore, source: ReplicationSourceId) {
  const hub = new GrpcReplicationHub({ store, shutdownGraceMs: 100, auth: { allowUnauthenticated: true } });
  await hub.start();
  const address = `127.0.0.1:${hub.port}`;
  const replicator = new GrpcResourceLeaseReplicator({
    hubs: [address],
    nodeId: source.nodeId,
    shard: source.shard,
    connectTimeoutMs: 2000,
    ackTimeoutMs: 2000,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 100,
  });
  const client = new GrpcReplicationHubClient({ address });
  return {
    store,
    source,
    log: new HubSourceLog(replicator, client, source),
    close: async () => {
      await replicator.close();
      client.close();
      await hub.close();
    },
  };
}

// Publisher → gRPC → hub → store → Subscribe → reader. A gap is withheld: the replicator cannot send past it without a
// backfill that has the missing events, and the hub refuses a re-sent number whose event differs. Reopen restarts
// the hub on the same store with a new replicator and client, as a restart of both processes would.
describeEventLogConformance(
  "gRPC replicator → hub → subscribe (in-memory hub store)",
  {
    create: () => hubLog(new InMemoryReplicationHubStore(), { nodeId: `node-${randomUUID()}`, shard: "billing" }),
    reopen: (closed) => hubLog(closed.store, closed.source),
  },
  { test, gaps: "withheld" },
);

// The hub's store contract on its own: each source's ReplicationHubLog (here core's in-memory log behind it).
const openSource = async (store: InMemoryReplicationHubStore, source: ReplicationSourceId) => ({
  store,
  source,
  log: await store.open(source),
  close: async () => undefined,
});
describeEventLogConformance(
  "InMemoryReplicationHubStore source log",
  {
    create: () => openSource(new InMemoryReplicationHubStore(), { nodeId: "node-a", shard: "" }),
    reopen: (closed) => openSource(closed.store, closed.source),
  },
  { test, gaps: "kept" },
);
