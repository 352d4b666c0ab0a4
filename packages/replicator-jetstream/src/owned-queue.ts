import { isOmniRelayError } from "@omnirelay/core";
import { JetStreamErrorCodes } from "./errors.js";
import type { JetStreamShardOwnership } from "./ownership.js";
import { type JetStreamResourceLeaseQueue, type JetStreamResourceLeaseQueueOptions, openQueue } from "./queue.js";
import type { JetStreamShardLease } from "./shard-lease.js";

/** Options of {@link openOwnedJetStreamResourceLeaseQueue}. */
export interface OwnedJetStreamResourceLeaseQueueOptions extends JetStreamResourceLeaseQueueOptions {
  /** This node's ownership instance: the shard (`log.shard`) is acquired through it. */
  readonly ownership: JetStreamShardOwnership;
  /** How long to wait for the current owner's ownership to run out. @defaultValue twice `ownershipTtlMs` */
  readonly acquireWaitMs?: number;
  /** Aborts the wait for the shard. */
  readonly signal?: AbortSignal;
}

/** A queue served under this node's ownership of its shard. */
export interface OwnedJetStreamResourceLeaseQueue extends JetStreamResourceLeaseQueue {
  /** This node's ownership of the shard. */
  readonly lease: JetStreamShardLease;
  /** Closes the queue and its log, then releases the shard (the next node takes it at once). */
  close(): Promise<void>;
}

/** Whether an error is the log's refusal of an append (another writer appended to the shard). */
function refused(error: unknown): boolean {
  if (!isOmniRelayError(error)) return false;
  return error.code === JetStreamErrorCodes.appendRefused || refused(error.cause);
}

/**
 * Takes a shard and serves its queue: acquires the shard through `ownership` (waiting out the previous owner's TTL),
 * opens its log and appends an owner-epoch marker — from then on the previous owner's appends are refused by the
 * stream — then rebuilds the queue from the newest snapshot and the events after it (leases the previous owner
 * granted stay valid: `activeLeases` defaults to `'keep'`, and fencing tokens continue after the highest in the log).
 * The queue stops serving at once, answering failed-precondition `resourcelease.not_owner` with the new owner's id and
 * URL (metadata `owner`, `ownerUrl`), when the ownership is lost (a renewal refused or none in time) or when the log
 * refuses an append (another node took the shard while this one could not tell).
 * @throws OmniRelayError as `JetStreamShardOwnership.acquire` (`resourcelease.not_owner` when another node still
 *   holds the shard after `acquireWaitMs`) and as {@link openJetStreamResourceLeaseQueue}.
 */
export async function openOwnedJetStreamResourceLeaseQueue(
  options: OwnedJetStreamResourceLeaseQueueOptions,
): Promise<OwnedJetStreamResourceLeaseQueue> {
  const { ownership } = options;
  const lease = await ownership.acquire(options.log.shard, {
    ...(options.acquireWaitMs === undefined ? {} : { waitMs: options.acquireWaitMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const opened = await openQueue(options, {
          afterLogOpen: async (log) => {
            if (lease.lost) throw lease.lost;
            await log.appendOwnerMarker({ owner: ownership.nodeId, url: ownership.url, epoch: lease.epoch });
          },
          mapPublishError: async (error) => (refused(error) ? lease.surrender(error) : error),
        });
        lease.onLost((error) => opened.queue.stopServing(error));
        if (lease.lost) opened.queue.stopServing(lease.lost);
        const close = async () => {
          await opened.close();
          await lease.release();
        };
        return { ...opened, lease, close, [Symbol.asyncDispose]: close };
      } catch (error) {
        // The previous owner's last append landed after this log opened: open again after it.
        if (attempt < 3 && refused(error) && !lease.lost) continue;
        throw error;
      }
    }
  } catch (error) {
    await lease.release().catch(() => undefined);
    throw error;
  }
}
