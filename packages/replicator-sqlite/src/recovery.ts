import { OmniRelayError, ResourceLeaseQueue, type ResourceLeaseQueueOptions, silentLogger } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import type { CommittedReader } from "./log-rows.js";
import type { SqliteResourceLeaseReplicatorOptions } from "./options.js";
import { SqliteResourceLeaseReplicator } from "./replicator.js";

/** Options of {@link openDurableResourceLeaseQueue}. */
export interface DurableResourceLeaseQueueOptions {
  /** Path of the SQLite file. */
  readonly path: string;
  /** Options of the rebuilt queue (its `replicator` is the SQLite log and cannot be given). */
  readonly queueOptions?: Omit<ResourceLeaseQueueOptions, "replicator">;
  /** Options of the log (everything but `path`); `verifyOnOpen` defaults to `'on-read'` here (the replay verifies). */
  readonly replicatorOptions?: Omit<SqliteResourceLeaseReplicatorOptions, "path">;
  /**
   * Store a queue snapshot after at least this many committed events, so restart replays about this many events.
   * A snapshot costs time in proportion to the queue's size, so the interval also grows to twice the number of items
   * the queue holds — or to when the queue has doubled since the last snapshot, so a queue that is only being filled
   * is snapshotted at every doubling and its restart replays at most about half of what it holds: either way the
   * cost per event stays constant however deep the queue is. A snapshot is written a few parts per turn of the event
   * loop, so it does not hold up publishes. 0 turns snapshots off (at close too).
   * @defaultValue 10000
   */
  readonly snapshotEveryEvents?: number;
  /**
   * Store a snapshot at {@link DurableResourceLeaseQueue.close} when the next open would otherwise replay at least
   * `snapshotEveryEvents` events and at least half as many events as the queue holds items (replaying an event costs
   * about twice what writing an item costs): close then takes time in proportion to the queue's size, and the next
   * open replays nothing — as a database checkpoints at shutdown. A process killed without `close` replays as usual.
   * @defaultValue true
   */
  readonly snapshotOnClose?: boolean;
}

/** The queue and its log, from {@link openDurableResourceLeaseQueue}. */
export interface DurableResourceLeaseQueue extends AsyncDisposable {
  readonly queue: ResourceLeaseQueue;
  readonly replicator: SqliteResourceLeaseReplicator;
  /** Events replayed from the log (after the snapshot) to rebuild the queue. */
  readonly replayedEvents: number;
  /** Sequence number of the snapshot the rebuild started from (0 when none). */
  readonly snapshotSequence: number;
  /**
   * Closes the queue, commits anything buffered, stores a snapshot when it is due (option `snapshotOnClose`), then
   * closes the log. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Opens a SQLite event log and rebuilds the queue it describes: the newest snapshot, then the events after it.
 * Pending items keep their order, dead letters stay dead, leases that were active when the process stopped are
 * expired (attempt counted, item requeued or dead-lettered; those LeaseExpired events are new and are written), and
 * numbering and fencing tokens continue after the highest ones ever issued. Pass `queue` to a
 * `ResourceLeaseDispatcherComponent` to serve it.
 * @throws OmniRelayError as {@link SqliteResourceLeaseReplicator.open}; failed-precondition
 *   `resourcelease.replication.replay_mismatch` when the events do not fit the snapshot.
 */
export async function openDurableResourceLeaseQueue(
  options: DurableResourceLeaseQueueOptions,
): Promise<DurableResourceLeaseQueue> {
  const every = integerOption("snapshotEveryEvents", options.snapshotEveryEvents, { min: 0, fallback: 10_000 });
  const onClose = options.snapshotOnClose ?? true;
  if (typeof onClose !== "boolean") {
    throw OmniRelayError.invalidOption("snapshotOnClose", "snapshotOnClose must be true or false.");
  }
  if ((options.queueOptions as { replicator?: unknown } | undefined)?.replicator !== undefined) {
    throw OmniRelayError.invalidOption(
      "queueOptions.replicator",
      "The replicator of a durable queue is its SQLite log.",
    );
  }
  // The replay below reads and verifies every row after the snapshot, so open need not read them first as well.
  const replicator = await SqliteResourceLeaseReplicator.open({
    verifyOnOpen: "on-read",
    ...options.replicatorOptions,
    path: options.path,
  });
  try {
    // In pieces: each part of a large snapshot is decoded, restored and let go of before the next (less to collect).
    const snapshot = replicator.latestSnapshotInPieces();
    const from = (snapshot?.head.lastEventSequence ?? 0) + 1;
    // read() returns a CommittedReader, which counts what it returned.
    const events = replicator.read(from) as CommittedReader;
    const queue = await ResourceLeaseQueue.rebuild(
      events,
      { ...options.queueOptions, replicator },
      { ...(snapshot ? { snapshot } : {}), activeLeases: "expire" },
    );
    const logger = options.replicatorOptions?.logger ?? silentLogger;
    const heldNow = () => {
      const stats = queue.stats();
      return stats.pendingCount + stats.activeLeaseCount + stats.deadLetterCount;
    };
    // The periodic snapshot being written, if any.
    let writing: Promise<void> | undefined;
    if (every > 0) {
      let failedAt = 0;
      // Items the queue held at the newest snapshot (or at open).
      let heldAtSnapshot = heldNow();
      replicator.onCommit((committed) => {
        // Only a snapshot of committed state: the queue may already hold mutations whose events are not committed.
        const since = committed - Math.max(replicator.stats().lastSnapshotSequence, failedAt);
        if (writing || since < every || queue.stats().lastEventSequence !== committed) return;
        // Amortise: a snapshot walks every item, so take one only after at least twice as many events as items held,
        // or once the queue has doubled since the last one (a queue that is only being filled never reaches the
        // first: so its replay stays at most about half of what it holds).
        const held = heldNow();
        if (since < 2 * held && held < 2 * heldAtSnapshot) return;
        // Written a few parts per turn of the event loop: publishes go on meanwhile.
        writing = replicator
          .saveSnapshotInSteps(queue.snapshotView())
          .then((stored) => {
            if (stored) heldAtSnapshot = held;
          })
          .catch((error: unknown) => {
            // Not again at the next commit (a snapshot costs time in proportion to the queue), but after as many
            // events as a success would have waited for. The log is intact either way: replay just starts earlier.
            failedAt = committed;
            logger.warn({ err: error }, "Storing a queue snapshot failed; the next one is due after another interval.");
          })
          .finally(() => {
            writing = undefined;
          });
      });
    }
    const snapshotAtClose = async () => {
      // What is still being committed, and a periodic snapshot its commit may start, come first.
      await replicator.flush();
      while (writing) await writing;
      const since = queue.stats().lastEventSequence - replicator.stats().lastSnapshotSequence;
      if (since < every || 2 * since < heldNow()) return;
      try {
        await replicator.saveSnapshotInSteps(queue.snapshotView());
      } catch (error) {
        // The log is intact: the next open replays from the previous snapshot.
        logger.warn({ err: error }, "Storing a queue snapshot at close failed; the next open replays the log.");
      }
    };
    let closing: Promise<void> | undefined;
    const closeOnce = async () => {
      await queue.close();
      if (every > 0 && onClose) await snapshotAtClose();
      await replicator.close();
    };
    const close = () => {
      closing ??= closeOnce();
      return closing;
    };
    return {
      queue,
      replicator,
      replayedEvents: events.count,
      snapshotSequence: snapshot?.head.lastEventSequence ?? 0,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await replicator.close().catch(() => undefined);
    throw error;
  }
}
