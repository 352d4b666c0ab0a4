import type { CallOptions, ResourceLeaseReplicationEvent, ResourceLeaseReplicator } from "../contracts/events.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { invoke, replicationFailure } from "./errors.js";

/** Options of {@link CompositeResourceLeaseReplicator}. */
export interface CompositeResourceLeaseReplicatorOptions {
  /** Replicators that all receive every event. At least one. */
  readonly replicators: readonly ResourceLeaseReplicator[];
}

/**
 * Publishes the same events — the same objects, so the same sequence numbers (the original let each hub number
 * them itself) — to several replicators. The inner calls are made together, in list order, so each inner
 * replicator receives publishes in the order they were made here.
 *
 * A publish resolves when every inner replicator resolved. Partial failure is not rolled back: replicators that
 * succeeded keep the events.
 */
export class CompositeResourceLeaseReplicator implements ResourceLeaseReplicator {
  private readonly replicators: readonly ResourceLeaseReplicator[];

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (option `replicators`) when empty or invalid. */
  constructor(options: CompositeResourceLeaseReplicatorOptions) {
    const replicators = options?.replicators;
    if (!Array.isArray(replicators) || replicators.length === 0) {
      throw OmniRelayError.invalidOption("replicators", "At least one replicator is required.");
    }
    if (replicators.some((r) => typeof r?.publish !== "function")) {
      throw OmniRelayError.invalidOption("replicators", "Every replicator must have a publish(events) method.");
    }
    this.replicators = [...replicators];
  }

  /**
   * Publishes `events` to every inner replicator and waits for all of them.
   * @throws OmniRelayError the failure of the first failing replicator (lowest index), with metadata
   *   `replication.stage=composite.publish`, `replication.replicator` (its index) and `replication.failed_count`.
   */
  async publish(events: readonly ResourceLeaseReplicationEvent[], options?: CallOptions): Promise<void> {
    const results = await Promise.allSettled(this.replicators.map((r) => invoke(() => r.publish(events, options))));
    const failures = results.flatMap((r, index) => (r.status === "rejected" ? [{ index, reason: r.reason }] : []));
    const first = failures[0];
    if (first !== undefined) {
      throw replicationFailure(first.reason, {
        "replication.stage": "composite.publish",
        "replication.replicator": String(first.index),
        "replication.failed_count": String(failures.length),
      });
    }
  }
}
