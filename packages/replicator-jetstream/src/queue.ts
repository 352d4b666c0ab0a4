import { OmniRelayError, ResourceLeaseQueue, type ResourceLeaseQueueOptions } from "@omnirelay/core";
import { JetStreamResourceLeaseEventLog } from "./event-log.js";
import type { JetStreamEventLogOptions } from "./options.js";

/** Options of {@link openJetStreamResourceLeaseQueue}. */
export interface JetStreamResourceLeaseQueueOptions {
  /** Where the shard's log is (see {@link JetStreamResourceLeaseEventLog.open}). */
  readonly log: JetStreamEventLogOptions;
  /** Options of the rebuilt queue (its `replicator` is the JetStream log and cannot be given). */
  readonly queueOptions?: Omit<ResourceLeaseQueueOptions, "replicator">;
  /**
   * Leases active at the end of the log: `'keep'` keeps them (same item, same fencing token), so workers that hold
   * leases granted before a restart or by the shard's previous owner go on; a lease nobody renews expires at its
   * deadline as usual. `'expire'` ends each at once with a LeaseExpired event, as the SQLite durable queue does.
   * @defaultValue 'keep'
   */
  readonly activeLeases?: "keep" | "expire";
}

/** The queue and its log, from {@link openJetStreamResourceLeaseQueue}. */
export interface JetStreamResourceLeaseQueue extends AsyncDisposable {
  readonly queue: ResourceLeaseQueue;
  readonly log: JetStreamResourceLeaseEventLog;
  /** Events replayed from the log to rebuild the queue. */
  readonly replayedEvents: number;
  /** Closes the queue, then the log (waiting for appends already accepted). */
  close(): Promise<void>;
}

/**
 * Opens a shard's JetStream log and rebuilds the queue it describes by replaying every event of the shard's
 * subject; the queue then appends to the same log. Numbering and fencing tokens continue after the highest ones in
 * the log. Pass `queue` to a `ResourceLeaseDispatcherComponent` to serve it.
 * @throws OmniRelayError as {@link JetStreamResourceLeaseEventLog.open}; invalid-argument
 *   `resourcelease.options.invalid` for a `queueOptions.replicator`; failed-precondition
 *   `resourcelease.replication.replay_mismatch` when the events are not a queue's history.
 */
export async function openJetStreamResourceLeaseQueue(
  options: JetStreamResourceLeaseQueueOptions,
): Promise<JetStreamResourceLeaseQueue> {
  if ((options.queueOptions as { replicator?: unknown } | undefined)?.replicator !== undefined) {
    throw OmniRelayError.invalidOption("queueOptions.replicator", "The replicator of this queue is its JetStream log.");
  }
  const activeLeases = options.activeLeases ?? "keep";
  if (activeLeases !== "keep" && activeLeases !== "expire") {
    throw OmniRelayError.invalidOption("activeLeases", "Option 'activeLeases' must be 'keep' or 'expire'.");
  }
  const log = await JetStreamResourceLeaseEventLog.open(options.log);
  try {
    let replayedEvents = 0;
    const events = (async function* () {
      for await (const event of log.read(1)) {
        replayedEvents++;
        yield event;
      }
    })();
    const queue = await ResourceLeaseQueue.rebuild(
      events,
      { ...options.queueOptions, replicator: log },
      { activeLeases },
    );
    const close = async () => {
      await queue.close();
      await log.close();
    };
    return { queue, log, replayedEvents, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await log.close().catch(() => undefined);
    throw error;
  }
}
