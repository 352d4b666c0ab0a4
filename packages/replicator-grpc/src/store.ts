import type {
  CallOptions,
  ResourceLeaseEventLog,
  ResourceLeaseReplicationEvent,
  ResourceLeaseReplicator,
} from "@omnirelay/core";
import { InMemoryResourceLeaseEventLog } from "@omnirelay/core/replication";
import { type ReplicationSourceId, sourceKey } from "./source.js";

/**
 * The durable log of one source at the hub. `publish` must store a contiguous run (it is only ever given
 * `lastSequence() + 1` onwards) and resolve once the events are durable; the hub acknowledges them after that.
 */
export interface ReplicationHubLog extends ResourceLeaseReplicator, ResourceLeaseEventLog {
  /** Releases the log's file or connection. */
  close?(): Promise<void>;
}

/**
 * Where the hub keeps its logs: one per source. `@omnirelay/hub` backs it with one SQLite file per source;
 * {@link InMemoryReplicationHubStore} is the test double.
 */
export interface ReplicationHubStore {
  /** Opens (creating when missing) the log of `source`. Called at most once per source while the hub runs. */
  open(source: ReplicationSourceId): Promise<ReplicationHubLog>;
  /** Sources that already have a log, so a restarted hub reports their checkpoints before they reconnect. */
  list(): Promise<readonly ReplicationSourceId[]>;
}

class MemoryLog implements ReplicationHubLog {
  constructor(private readonly inner: InMemoryResourceLeaseEventLog) {}
  publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void> {
    return this.inner.publish(events, options);
  }
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent> {
    return this.inner.read(fromSequence, limit);
  }
  lastSequence(): Promise<number> {
    return this.inner.lastSequence();
  }
}

/** A {@link ReplicationHubStore} in memory (core's `InMemoryResourceLeaseEventLog` per source). For tests. */
export class InMemoryReplicationHubStore implements ReplicationHubStore {
  private readonly logs = new Map<string, { source: ReplicationSourceId; log: InMemoryResourceLeaseEventLog }>();

  async open(source: ReplicationSourceId): Promise<ReplicationHubLog> {
    const key = sourceKey(source);
    let entry = this.logs.get(key);
    if (!entry) {
      entry = { source: { nodeId: source.nodeId, shard: source.shard }, log: new InMemoryResourceLeaseEventLog() };
      this.logs.set(key, entry);
    }
    return new MemoryLog(entry.log);
  }

  async list(): Promise<readonly ReplicationSourceId[]> {
    return [...this.logs.values()].map((e) => e.source);
  }

  /** Every stored event of `source`, in order (empty when unknown). */
  events(source: ReplicationSourceId): readonly ResourceLeaseReplicationEvent[] {
    return this.logs.get(sourceKey(source))?.log.snapshot() ?? [];
  }
}
