import type { JetStreamMeshNode, JetStreamReachability, OwnershipChange } from "./jetstream-node.js";

/** One shard as a node of the JetStream mode reports it at `/demo/mesh`. */
export interface MeshShardStatus {
  readonly shard: string;
  readonly namespace: string;
  /** Owner node id from the ownership key ("" when released or never owned). */
  readonly owner: string;
  readonly ownerUrl: string;
  /** Ownership epoch (the key's; 0 when never owned). */
  readonly epoch: number;
  /** Where placement puts the shard now (by this node's last rebalance). */
  readonly placedOn: string;
  /** Whether this node serves the shard now. */
  readonly servedHere: boolean;
  /**
   * Only when served here: the log's last acknowledged event sequence, the queue's last event, and the last one the
   * follower applied to the shared deterministic store (its checkpoint; the lag is `logLastSequence - appliedSequence`).
   */
  readonly logLastSequence?: number;
  readonly queueSequence?: number;
  readonly appliedSequence?: number;
  /** Only when served here: the stream sequence the next append expects, and a fault of the log. */
  readonly lastSubjectSequence?: number;
  readonly logFault?: string;
  readonly state?: string;
  readonly pending?: number;
  readonly active?: number;
  readonly deadLetters?: number;
  /** Items completed since this node took the shard. */
  readonly completedHere?: number;
  /** When this node took the shard. */
  readonly servedSince?: string;
}

/** The `/demo/mesh` document of a node. */
export interface MeshStatus {
  readonly observedAt: string;
  readonly nodeId: string;
  readonly url: string;
  readonly jetstream: JetStreamReachability & { readonly servers: readonly string[]; readonly stream: string };
  readonly members: { readonly nodeId: string; readonly url: string }[];
  readonly shards: MeshShardStatus[];
  readonly changes: readonly OwnershipChange[];
  readonly catalog: { readonly tableCount: number; readonly counts: Record<string, number> };
}

/** Reads the node's view of the mesh: the ownership keys, and the state of the shards it serves. */
export async function meshStatus(node: JetStreamMeshNode): Promise<MeshStatus> {
  const served = node.placement.owned();
  const placedOn = node.placement.placement();
  const shards = await Promise.all(
    [...placedOn.keys()].map(async (shard): Promise<MeshShardStatus> => {
      const record = node.jetstream.reachable ? await node.ownership.owner(shard).catch(() => undefined) : undefined;
      const here = served.get(shard)?.served;
      const base = {
        shard,
        namespace: node.namespaces.get(shard) ?? shard,
        owner: record && !record.released ? record.owner : "",
        ownerUrl: record && !record.released ? record.url : "",
        epoch: record?.epoch ?? 0,
        placedOn: placedOn.get(shard) ?? "",
        servedHere: here !== undefined,
      };
      if (!here) return base;
      const log = here.owned.log.stats();
      const queue = here.owned.queue.stats();
      return {
        ...base,
        logLastSequence: log.lastSequence,
        queueSequence: queue.lastEventSequence,
        appliedSequence: here.follower.checkpoint,
        lastSubjectSequence: log.lastSubjectSequence,
        ...(log.fault ? { logFault: `${log.fault.code}: ${log.fault.message}` } : {}),
        state: queue.state,
        pending: queue.pendingCount,
        active: queue.activeLeaseCount,
        deadLetters: queue.deadLetterCount,
        completedHere: here.counts.completed,
        servedSince: new Date(here.since).toISOString(),
      };
    }),
  );
  const view = node.catalog.view(1);
  return {
    observedAt: new Date().toISOString(),
    nodeId: node.nodeId,
    url: node.url,
    jetstream: { ...node.jetstream, servers: node.servers, stream: node.names.stream },
    members: node.placement.members().map((m) => ({ nodeId: m.nodeId, url: m.url })),
    shards,
    changes: [...node.changes],
    catalog: { tableCount: view.tableCount, counts: view.counts },
  };
}
