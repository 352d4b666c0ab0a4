import {
  OmniRelayError,
  ResourceLeaseQueue,
  type ResourceLeaseQueueOptions,
  type ResourceLeaseReplicator,
} from "@omnirelay/core";
import { integerOption, textOption } from "@omnirelay/core/wire";
import { JetStreamErrorCodes } from "./errors.js";
import { JetStreamResourceLeaseEventLog } from "./event-log.js";
import type { JetStreamEventLogOptions } from "./options.js";
import { JetStreamSnapshotStore, type LoadedSnapshot } from "./snapshots.js";
import { type JetStreamSnapshotStats, Snapshotter } from "./snapshotter.js";

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
  /**
   * Store the queue's snapshot after at least this many events, so a reopen or a takeover replays about this many
   * events after the newest snapshot instead of the whole subject. The interval also grows to twice the number of
   * items the queue holds (a snapshot costs time in proportion to the queue). 0 turns snapshots off (none is
   * written; one already stored is still loaded). @defaultValue 10000
   */
  readonly snapshotEveryEvents?: number;
  /**
   * KV bucket of the snapshots (created when absent: history 1, file storage, the log's `replicas`). One bucket
   * serves every shard: key `<shard>` is the head, `<shard>.<id>.<n>` the parts. @defaultValue "OMNIRELAY_SNAPSHOTS"
   */
  readonly snapshotBucket?: string;
  /**
   * Largest value of one snapshot part; a bigger snapshot is stored in several. @defaultValue the server's max
   * payload less 1 KiB
   */
  readonly snapshotChunkBytes?: number;
  /**
   * Trim the shard's log behind each snapshot this queue stores, keeping this many events before it (whole messages:
   * a little more may stay). Storage then stays bounded, but the log alone no longer rebuilds the queue: a reopen
   * needs the snapshot (a trimmed log without one that covers the gap is refused as data loss), and sinks that read
   * the log must keep up within the kept events. Leave it out to keep every event (the default); 0 keeps none
   * behind the snapshot. Needs snapshots (`snapshotEveryEvents` > 0).
   */
  readonly retainEventsBehindSnapshot?: number;
  /**
   * Store a snapshot at {@link JetStreamResourceLeaseQueue.close} when every event is acknowledged and the next open
   * (this node's, or the next owner's after a planned handover) would otherwise replay at least `snapshotEveryEvents`
   * events and at least half as many events as the queue holds items: close then takes time in proportion to the
   * queue's size, and the next open replays nothing. A node that dies without `close` leaves the replay as usual.
   * @defaultValue true
   */
  readonly snapshotOnClose?: boolean;
}

/** The queue and its log, from {@link openJetStreamResourceLeaseQueue}. */
export interface JetStreamResourceLeaseQueue extends AsyncDisposable {
  readonly queue: ResourceLeaseQueue;
  readonly log: JetStreamResourceLeaseEventLog;
  /** Events replayed from the log (after the snapshot) to rebuild the queue. */
  readonly replayedEvents: number;
  /** Last event sequence of the snapshot the rebuild started from (0 when none). */
  readonly snapshotSequence: number;
  /** Snapshot counters. */
  snapshotStats(): JetStreamSnapshotStats;
  /**
   * Closes the queue, waits for a snapshot write in flight, stores a snapshot when one is due (option
   * `snapshotOnClose`), then closes the log. Idempotent.
   */
  close(): Promise<void>;
}

/** Hooks of a queue opened by an owner of its shard (see `openOwnedJetStreamQueue`). Internal. */
export interface QueueOpenHooks {
  /** Runs once the log is open and before anything is read: an owner appends its epoch marker here. */
  readonly afterLogOpen?: (log: JetStreamResourceLeaseEventLog) => Promise<void>;
  /** Maps a publish the log refused (an owner turns `append_refused` into `resourcelease.not_owner`). */
  readonly mapPublishError?: (error: unknown) => Promise<unknown>;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Opens a shard's JetStream log and rebuilds the queue it describes: the newest snapshot in the snapshot bucket,
 * then the events of the shard's subject after it; the queue then appends to the same log and stores a new snapshot
 * every `snapshotEveryEvents` events. Numbering and fencing tokens continue after the highest ones in the log. Pass
 * `queue` to a `ResourceLeaseDispatcherComponent` to serve it.
 * @throws OmniRelayError as {@link JetStreamResourceLeaseEventLog.open}; invalid-argument
 *   `resourcelease.options.invalid` for a `queueOptions.replicator` or a bad option; failed-precondition
 *   `resourcelease.replication.replay_mismatch` when the events are not a queue's history; data-loss
 *   `resourcelease.jetstream.corrupt` when the newest snapshot covers events the log does not hold.
 */
export async function openJetStreamResourceLeaseQueue(
  options: JetStreamResourceLeaseQueueOptions,
): Promise<JetStreamResourceLeaseQueue> {
  return openQueue(options, {});
}

/** {@link openJetStreamResourceLeaseQueue} with an owner's hooks. Internal. */
export async function openQueue(
  options: JetStreamResourceLeaseQueueOptions,
  hooks: QueueOpenHooks,
): Promise<JetStreamResourceLeaseQueue> {
  if ((options.queueOptions as { replicator?: unknown } | undefined)?.replicator !== undefined) {
    throw OmniRelayError.invalidOption("queueOptions.replicator", "The replicator of this queue is its JetStream log.");
  }
  const activeLeases = options.activeLeases ?? "keep";
  if (activeLeases !== "keep" && activeLeases !== "expire") {
    throw OmniRelayError.invalidOption("activeLeases", "Option 'activeLeases' must be 'keep' or 'expire'.");
  }
  const every = integerOption("snapshotEveryEvents", options.snapshotEveryEvents, { min: 0, fallback: 10_000 });
  const bucket = textOption("snapshotBucket", options.snapshotBucket, { max: 200, fallback: "OMNIRELAY_SNAPSHOTS" });
  if (!TOKEN.test(bucket)) throw OmniRelayError.invalidOption("snapshotBucket", `It must match ${TOKEN.source}.`);
  const retain =
    options.retainEventsBehindSnapshot === undefined
      ? undefined
      : integerOption("retainEventsBehindSnapshot", options.retainEventsBehindSnapshot, { min: 0, fallback: 0 });
  if (retain !== undefined && every === 0) {
    throw OmniRelayError.invalidOption("retainEventsBehindSnapshot", "Trimming the log needs snapshotEveryEvents > 0.");
  }
  const onClose = options.snapshotOnClose ?? true;
  if (typeof onClose !== "boolean") {
    throw OmniRelayError.invalidOption("snapshotOnClose", "snapshotOnClose must be true or false.");
  }
  const log = await JetStreamResourceLeaseEventLog.open(options.log);
  try {
    await hooks.afterLogOpen?.(log);
    const stats = log.stats();
    const chunkBytes = integerOption("snapshotChunkBytes", options.snapshotChunkBytes, {
      min: 1024,
      max: stats.maxMessageBytes,
      fallback: stats.maxMessageBytes,
    });
    const store = await JetStreamSnapshotStore.open(log.natsConnection, {
      bucket,
      shard: log.shard,
      replicas: stats.replicas,
      chunkBytes,
      timeoutMs: options.log.appendTimeoutMs ?? 5000,
    });
    const loaded = await store.load(stats.lastSequence);
    checkSnapshot(loaded, stats.lastSequence, log.subject);
    const snapshot = loaded?.snapshot;
    const snapshotSequence = loaded?.lastEventSequence ?? 0;
    checkNotTrimmedBehind(snapshotSequence, await log.firstSequence(), log.subject);
    const snapshotter = new Snapshotter(store, every, snapshotSequence);
    if (retain !== undefined) snapshotter.trim = { retain, trimBefore: (from) => log.trimBefore(from) };
    let replayedEvents = 0;
    const events = (async function* () {
      for await (const event of log.read(snapshotSequence + 1)) {
        replayedEvents++;
        snapshotter.replayed(event.sequenceNumber);
        yield event;
      }
    })();
    const replicator: ResourceLeaseReplicator = {
      async publish(batch, callOptions) {
        snapshotter.beforePublish(batch);
        try {
          await log.publish(batch, callOptions);
        } catch (error) {
          snapshotter.appendFailed();
          throw hooks.mapPublishError ? await hooks.mapPublishError(error) : error;
        }
        snapshotter.acknowledged(batch.at(-1)?.sequenceNumber ?? 0);
      },
    };
    const queue = await ResourceLeaseQueue.rebuild(
      events,
      { ...options.queueOptions, replicator },
      { ...(snapshot ? { snapshot } : {}), activeLeases },
    );
    snapshotter.queue = queue;
    let closing: Promise<void> | undefined;
    const closeOnce = async () => {
      await queue.close();
      await (onClose ? snapshotter.atClose() : snapshotter.settle());
      await log.close();
    };
    const close = () => {
      closing ??= closeOnce();
      return closing;
    };
    return {
      queue,
      log,
      replayedEvents,
      snapshotSequence,
      snapshotStats: () => snapshotter.stats(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await log.close().catch(() => undefined);
    throw error;
  }
}

/** A snapshot beyond the log's end means the log lost acknowledged events: refuse to number over them. */
function checkSnapshot(loaded: LoadedSnapshot | undefined, lastSequence: number, subject: string): void {
  if (loaded === undefined || loaded.lastEventSequence <= lastSequence) return;
  throw new OmniRelayError({
    status: "data-loss",
    code: JetStreamErrorCodes.corrupt,
    message: `The newest snapshot of ${subject} covers events through ${loaded.lastEventSequence}, but the log ends at ${lastSequence}: the stream lost acknowledged events.`,
    metadata: {
      "jetstream.subject": subject,
      "snapshot.sequence": String(loaded.lastEventSequence),
      "replication.last_sequence": String(lastSequence),
    },
  });
}

/** A log trimmed past the snapshot's end (or trimmed, with no snapshot) cannot rebuild the queue: refuse, lose nothing. */
function checkNotTrimmedBehind(snapshotSequence: number, firstSequence: number, subject: string): void {
  if (firstSequence <= snapshotSequence + 1) return;
  throw new OmniRelayError({
    status: "data-loss",
    code: JetStreamErrorCodes.corrupt,
    message: `The log of ${subject} starts at event ${firstSequence} (trimmed), but ${snapshotSequence === 0 ? "no snapshot is stored" : `the newest snapshot ends at ${snapshotSequence}`}: events ${snapshotSequence + 1}–${firstSequence - 1} are in neither. Restore the snapshot bucket or rebuild from another copy of the stream.`,
    metadata: {
      "jetstream.subject": subject,
      "snapshot.sequence": String(snapshotSequence),
      "replication.first_sequence": String(firstSequence),
    },
  });
}
