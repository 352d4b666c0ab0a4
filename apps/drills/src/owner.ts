import { OmniRelayError } from "@omnirelay/core";
import { JetStreamShardOwnership, openOwnedJetStreamResourceLeaseQueue } from "@omnirelay/replicator-jetstream";
import { type Command, commands, emit, pause } from "./lines.js";

/** Configuration of a drill shard owner on NATS JetStream (passed as JSON). */
export interface DrillOwnerConfig {
  readonly nodeId: string;
  readonly servers: readonly string[];
  readonly ttlMs: number;
  readonly leaseMs: number;
  /** Stream, subject prefix and bucket names share this prefix. */
  readonly prefix: string;
  readonly shard: string;
}

/**
 * A dispatcher node owning one shard of a queue on NATS JetStream: acquires the shard (waiting out the previous
 * owner's TTL), then enqueues, leases and completes items one by one, reporting each step (`enqueuing`, `ack`,
 * `completing`, `done`) on stdout, and `lost` when its ownership ends. The first refused call stops the loop (`refused`
 * with its code); `probe` tries one more enqueue and reports what the queue answered.
 */
export async function runOwner(config: DrillOwnerConfig): Promise<void> {
  const ownership = await JetStreamShardOwnership.open({
    servers: [...config.servers],
    bucket: `${config.prefix}_OWNERS`,
    nodeId: config.nodeId,
    url: `http://${config.nodeId}.drill:7400`,
    ownershipTtlMs: config.ttlMs,
  });
  emit({ t: "ready", nodeId: config.nodeId });
  const owned = await openOwnedJetStreamResourceLeaseQueue({
    ownership,
    log: {
      servers: [...config.servers],
      stream: `${config.prefix}_LOG`,
      subjectPrefix: config.prefix,
      shard: config.shard,
    },
    snapshotBucket: `${config.prefix}_SNAPSHOTS`,
    acquireWaitMs: 30_000,
    queueOptions: { leaseDurationMs: config.leaseMs },
  });
  emit({ t: "owner", epoch: owned.lease.epoch });
  owned.lease.onLost((error) => emit({ t: "lost", code: error.code, owner: error.metadata.owner ?? null }));
  const running = work(owned.queue, config.nodeId);
  await commands(async (command: Command) => {
    if (command.cmd !== "probe") throw new Error(`unknown command ${command.cmd}`);
    try {
      await owned.queue.stats();
      await owned.queue.enqueue(payload(`${config.nodeId}-probe-${Date.now()}`));
      emit({ t: "probe", ok: true });
    } catch (error) {
      const e = OmniRelayError.from(error);
      emit({ t: "probe", ok: false, code: e.code, owner: e.metadata.owner ?? null });
    }
  });
  // stdin closed: the test is done with this node (the work loop may still wait on an append the stream refuses).
  void running;
  process.exit(0);
}

type Queue = Awaited<ReturnType<typeof openOwnedJetStreamResourceLeaseQueue>>["queue"];

/** Enqueue one, lease the oldest, complete it — until a call is refused. */
async function work(queue: Queue, nodeId: string): Promise<void> {
  try {
    for (let n = 1; ; n++) {
      const rid = `${nodeId}-${n}`;
      emit({ t: "enqueuing", rid });
      await queue.enqueue(payload(rid));
      emit({ t: "ack", rid });
      const [grant] = await queue.lease({ peerId: nodeId, maxItems: 1 });
      if (grant === undefined) {
        await pause(20);
        continue;
      }
      const leased = grant.payload.resourceId;
      emit({ t: "completing", rid: leased, ft: grant.ownershipToken.fencingToken });
      await queue.complete(grant.ownershipToken);
      emit({ t: "done", rid: leased, ft: grant.ownershipToken.fencingToken });
    }
  } catch (error) {
    const e = OmniRelayError.from(error);
    emit({ t: "refused", code: e.code, owner: e.metadata.owner ?? null });
  }
}

function payload(resourceId: string) {
  return { resourceType: "drill", resourceId, partitionKey: resourceId, payloadEncoding: "json" };
}
