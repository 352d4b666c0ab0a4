import { OmniRelayError } from "@omnirelay/core";
import { textOption } from "@omnirelay/core/wire";
import { duplicate } from "./errors.js";
import type { DeterministicStoreSource, ReplicationOutboxSource } from "./metrics.js";
import type { ReplicationSource } from "./replication.js";
import type { ReplicationCheckpointRow } from "./routes.js";

/** A replication outbox registration for `ResourceLeaseControlPlane.addReplicationOutbox`. */
export interface ReplicationOutboxOptions {
  /** Name of the replicator or hub client (a bounded label value). */
  readonly sink: string;
  /** Shard whose events it carries. */
  readonly shard: string;
  /** Events handed to it and not acknowledged yet, e.g. `() => grpcReplicator.lag().pendingEvents`. */
  readonly pendingEvents: () => number;
}

/** A deterministic store registration for `ResourceLeaseControlPlane.addDeterministicStore`. */
export interface DeterministicStoreOptions {
  /** Name of the store (a bounded label value). */
  readonly store: string;
  /** Number of records it holds, e.g. `() => sqliteStore.count()`; read at every scrape, so keep it cheap. */
  readonly records: () => number | Promise<number>;
}

/** The replication sinks, outboxes and deterministic stores a control plane reports (internal). */
export class ReplicationRegistry {
  private readonly sources = new Map<string, ReplicationSource>();
  private readonly outboxList = new Map<string, ReplicationOutboxSource>();
  private readonly storeList = new Map<string, DeterministicStoreSource>();

  /** Registers a sink's checkpoint; see `ResourceLeaseControlPlane.addReplicationSource`. */
  addSource(source: ReplicationSource): () => void {
    const sink = textOption("sink", source?.sink);
    const shard = textOption("shard", source.shard);
    if (typeof source.checkpoint !== "function")
      throw OmniRelayError.invalidOption("checkpoint", "Option 'checkpoint' is required.");
    return register(
      this.sources,
      { kind: "replication source", name: `${sink}/${shard}`, key: `${sink}\u0000${shard}` },
      {
        sink,
        shard,
        checkpoint: source.checkpoint,
      },
    );
  }

  /** Registers an outbox; see `ResourceLeaseControlPlane.addReplicationOutbox`. */
  addOutbox(options: ReplicationOutboxOptions): () => void {
    const sink = textOption("sink", options?.sink);
    const shard = textOption("shard", options.shard);
    if (typeof options.pendingEvents !== "function")
      throw OmniRelayError.invalidOption("pendingEvents", "Option 'pendingEvents' must be a function.");
    return register(
      this.outboxList,
      { kind: "replication outbox", name: `${sink}/${shard}`, key: `${sink}\u0000${shard}` },
      {
        sink,
        shard,
        pendingEvents: options.pendingEvents,
      },
    );
  }

  /** Registers a deterministic store; see `ResourceLeaseControlPlane.addDeterministicStore`. */
  addStore(options: DeterministicStoreOptions): () => void {
    const store = textOption("store", options?.store);
    if (typeof options.records !== "function")
      throw OmniRelayError.invalidOption("records", "Option 'records' must be a function.");
    return register(this.storeList, { kind: "deterministic store", name: store }, { store, records: options.records });
  }

  outboxes(): ReplicationOutboxSource[] {
    return [...this.outboxList.values()];
  }

  stores(): DeterministicStoreSource[] {
    return [...this.storeList.values()];
  }

  /** Every sink's checkpoint, compared with the last event sequence of its shard's queue (when registered). */
  checkpoints(queueSequence: (shard: string) => number | undefined): ReplicationCheckpointRow[] {
    return [...this.sources.values()].map((source) => {
      const queueLastEventSequence = queueSequence(source.shard);
      try {
        const checkpoint = source.checkpoint();
        const caught = queueLastEventSequence !== undefined && checkpoint.lastSequence >= queueLastEventSequence;
        const lagMs = caught ? 0 : checkpoint.lagMs;
        return {
          sink: source.sink,
          shard: source.shard,
          lastSequence: checkpoint.lastSequence,
          ...(lagMs !== undefined ? { lagMs } : {}),
          ...(queueLastEventSequence !== undefined
            ? { queueLastEventSequence, behindEvents: Math.max(0, queueLastEventSequence - checkpoint.lastSequence) }
            : {}),
        };
      } catch (err) {
        return {
          sink: source.sink,
          shard: source.shard,
          error: err instanceof Error ? err.message : String(err),
          ...(queueLastEventSequence !== undefined ? { queueLastEventSequence } : {}),
        };
      }
    });
  }
}

/** Adds `entry` under its key (refusing a duplicate) and returns the function that removes it again. */
function register<T>(map: Map<string, T>, what: { kind: string; name: string; key?: string }, entry: T): () => void {
  const key = what.key ?? what.name;
  if (map.has(key)) throw duplicate(what.kind, what.name);
  map.set(key, entry);
  return () => {
    if (map.get(key) === entry) map.delete(key);
  };
}
