import { ErrorCodes, isOmniRelayError, type Logger } from "@omnirelay/core";
import type { ShardPlacementEvent } from "@omnirelay/replicator-jetstream";
import type { MeshOwnershipMetrics } from "./mesh-metrics.js";

/** One ownership change a node saw. */
export interface OwnershipChange {
  readonly at: string;
  readonly node: string;
  readonly shard: string;
  readonly change: "acquired" | "released" | "lost";
  readonly epoch: number;
  readonly reason?: string;
}

/** Whether an error (or one of its causes) is a JetStream log's refusal of an append. */
export function isAppendRefusal(error: unknown, depth = 0): boolean {
  if (!isOmniRelayError(error) || depth > 5) return false;
  return error.code === ErrorCodes.jetstream.appendRefused || isAppendRefusal(error.cause, depth + 1);
}

/**
 * The placement's `onEvent` of a node: counts every acquisition, release and loss in the metrics (a loss caused by a
 * refused append also as an append refusal), keeps the newest 50 changes in `changes`, and logs them.
 */
export function placementEventRecorder(context: {
  readonly nodeId: string;
  readonly metrics: MeshOwnershipMetrics;
  readonly logger: Logger;
  readonly changes: OwnershipChange[];
}): (event: ShardPlacementEvent) => void {
  const { nodeId, metrics, logger, changes } = context;
  const note = (change: Omit<OwnershipChange, "at" | "node">) => {
    changes.push({ at: new Date().toISOString(), node: nodeId, ...change });
    if (changes.length > 50) changes.splice(0, changes.length - 50);
  };
  return (event) => {
    if (event.type === "error") {
      logger.warn({ shard: event.shard, err: event.error }, "Shard placement error.");
      return;
    }
    const { shard, epoch } = event;
    metrics.changes.inc({ shard, change: event.type });
    if (event.type === "acquired") {
      metrics.owned.set({ shard }, 1);
      metrics.epoch.set({ shard }, epoch);
      note({ shard, change: "acquired", epoch });
      logger.info({ shard, epoch, node: nodeId }, "Shard acquired.");
      return;
    }
    metrics.owned.set({ shard }, 0);
    if (event.type === "lost" && isAppendRefusal(event.error)) metrics.refusals.inc({ shard });
    const reason = event.type === "released" ? event.reason : event.error.message;
    note({ shard, change: event.type, epoch, reason });
    logger.warn({ shard, epoch, node: nodeId, reason }, `Shard ${event.type}.`);
  };
}
