import type { CallOptions, ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { invoke, replicationFailure } from "./errors.js";

/** Options of {@link ShardedResourceLeaseReplicator}. */
export interface ShardedResourceLeaseReplicatorOptions {
  /** The replicator that receives the tagged events. */
  readonly inner: ResourceLeaseReplicator;
  /** Shard id put in each event's metadata `shard.id`. Trimmed; must not be blank. */
  readonly shardId: string;
}

/**
 * Tags every event with metadata `shard.id` and forwards it to an inner replicator. Events are copied (the
 * caller's objects are not changed) and keep their sequence numbers; calls reach the inner replicator in the
 * order they were made.
 */
export class ShardedResourceLeaseReplicator implements ResourceLeaseReplicator {
  private readonly inner: ResourceLeaseReplicator;
  /** The trimmed shard id. */
  readonly shardId: string;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (option `inner` or `shardId`). */
  constructor(options: ShardedResourceLeaseReplicatorOptions) {
    if (typeof options?.inner?.publish !== "function")
      throw OmniRelayError.invalidOption("inner", "inner must be a replicator.");
    const shardId = typeof options.shardId === "string" ? options.shardId.trim() : "";
    if (shardId.length === 0) throw OmniRelayError.invalidOption("shardId", "shardId must be a non-blank string.");
    this.inner = options.inner;
    this.shardId = shardId;
  }

  /**
   * Forwards copies of `events` with `shard.id` set.
   * @throws OmniRelayError the inner replicator's failure, with metadata `replication.stage=shard.forward` and
   *   `replication.shard`.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void> {
    const tagged = events.map((event) => ({ ...event, metadata: { ...event.metadata, "shard.id": this.shardId } }));
    return invoke(() => this.inner.publish(tagged, options)).catch((error: unknown) => {
      throw replicationFailure(error, { "replication.stage": "shard.forward", "replication.shard": this.shardId });
    });
  }
}
