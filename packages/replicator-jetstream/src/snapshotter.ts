import type { ResourceLeaseQueue, ResourceLeaseQueueStats, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import type { ResourceLeaseQueueSnapshotView } from "@omnirelay/core/replication";
import type { JetStreamSnapshotStore } from "./snapshots.js";

/** Counters of a queue's snapshots, for diagnostics. */
export interface JetStreamSnapshotStats {
  /** Last event sequence of the snapshot the queue was rebuilt from (0 when none). */
  readonly loadedSequence: number;
  /** Last event sequence of the newest snapshot this queue stored (or loaded, when it stored none). */
  readonly lastSequence: number;
  /** Snapshots stored since open. */
  readonly saved: number;
  /** Snapshot writes that failed since open (the log is intact either way: replay just starts earlier). */
  readonly failed: number;
  /** The last failure's message, if any. */
  readonly lastError: string | undefined;
  /** Log messages removed behind stored snapshots since open (option `retainEventsBehindSnapshot`). */
  readonly trimmedMessages: number;
  /** Trims that failed since open (the next snapshot tries again; nothing is lost either way). */
  readonly trimFailed: number;
}

/** Trims the log behind a stored snapshot: `retain` events before it stay. Internal. */
export interface SnapshotTrim {
  readonly retain: number;
  readonly trimBefore: (fromEvent: number) => Promise<number>;
}

/**
 * Takes the queue's snapshot every `every` events and stores it once the events it covers are acknowledged. The
 * snapshot is captured when the queue hands a batch to the log — the queue's state then ends at exactly that batch's
 * last event — and written after that batch's acknowledgement, so it never covers an event the log does not hold.
 * Like the SQLite log, the interval also grows to twice the number of items the queue holds, so the cost per event
 * stays constant however deep the queue is. One write at a time; a write never delays an append. Internal.
 */
export class Snapshotter {
  queue: ResourceLeaseQueue | undefined;
  /**
   * The state captured at a batch's hand-over, as a view: its items are built only when the write encodes them, and
   * until then it holds ~16 bytes per item (a whole snapshot held ~260 bytes per item while the append was in flight,
   * and took 3–4 times as long to capture).
   */
  private captured: ResourceLeaseQueueSnapshotView | undefined;
  private writing: Promise<void> | undefined;
  private lastSequence: number;
  /** Every event through this one is in the log (replayed at open, or appended and acknowledged since). */
  private acknowledgedThrough: number;
  private failedAt = 0;
  private saved = 0;
  private failed = 0;
  private lastError: string | undefined;
  private trimmed = 0;
  private trimFailed = 0;
  /** Set to trim the log behind each stored snapshot. */
  trim: SnapshotTrim | undefined;

  constructor(
    private readonly store: JetStreamSnapshotStore | undefined,
    private readonly every: number,
    private readonly loadedSequence: number,
  ) {
    this.lastSequence = loadedSequence;
    this.acknowledgedThrough = loadedSequence;
  }

  /** Called with each event replayed from the log at open. */
  replayed(sequence: number): void {
    this.acknowledgedThrough = sequence;
  }

  /** Called with each batch just before it is handed to the log. */
  beforePublish(events: readonly ResourceLeaseReplicationEvent[]): void {
    const queue = this.queue;
    if (queue === undefined || this.store === undefined || this.every === 0) return;
    if (this.captured !== undefined || this.writing !== undefined) return;
    const last = events.at(-1)?.sequenceNumber ?? 0;
    const since = last - Math.max(this.lastSequence, this.failedAt);
    if (since < this.every) return;
    const stats = queue.stats();
    if (stats.lastEventSequence !== last) return;
    if (since < 2 * heldItems(stats)) return;
    this.captured = queue.snapshotView();
  }

  /**
   * Called at close, once the queue is closed: stores a snapshot (and waits for it) when every event is acknowledged
   * and the next open would otherwise replay at least `every` events and at least half as many events as the queue
   * holds items.
   */
  async atClose(): Promise<void> {
    await this.settle();
    const queue = this.queue;
    if (queue === undefined || this.store === undefined || this.every === 0) return;
    const stats = queue.stats();
    const last = stats.lastEventSequence;
    if (last !== this.acknowledgedThrough) return;
    const since = last - Math.max(this.lastSequence, this.failedAt);
    if (since < this.every || 2 * since < heldItems(stats)) return;
    this.captured = queue.snapshotView();
    this.acknowledged(last);
    await this.settle();
  }

  /** Called after the log acknowledged every event through `last`. */
  acknowledged(last: number): void {
    this.acknowledgedThrough = Math.max(this.acknowledgedThrough, last);
    const snapshot = this.captured;
    if (snapshot === undefined || snapshot.lastEventSequence > last || this.store === undefined) return;
    this.captured = undefined;
    this.writing = this.store
      .save(snapshot)
      .then(
        async (stored) => {
          if (stored) this.saved++;
          this.lastSequence = Math.max(this.lastSequence, snapshot.lastEventSequence);
          // Only behind a snapshot this write stored: the head now covers every event the trim removes.
          if (stored && this.trim) await this.trimBehind(this.trim, snapshot.lastEventSequence);
        },
        (error: unknown) => {
          // Not again at the next batch, but after as many events as a success would have waited for.
          this.failedAt = snapshot.lastEventSequence;
          this.failed++;
          this.lastError = error instanceof Error ? error.message : String(error);
        },
      )
      .finally(() => {
        this.writing = undefined;
      });
  }

  private async trimBehind(trim: SnapshotTrim, covered: number): Promise<void> {
    try {
      this.trimmed += await trim.trimBefore(covered + 1 - trim.retain);
    } catch {
      this.trimFailed++;
    }
  }

  /** Called when an append failed: the captured snapshot may cover events the log never stored. */
  appendFailed(): void {
    this.captured = undefined;
  }

  /** Waits for a snapshot write in flight. */
  async settle(): Promise<void> {
    await this.writing;
  }

  stats(): JetStreamSnapshotStats {
    return {
      loadedSequence: this.loadedSequence,
      lastSequence: this.lastSequence,
      saved: this.saved,
      failed: this.failed,
      lastError: this.lastError,
      trimmedMessages: this.trimmed,
      trimFailed: this.trimFailed,
    };
  }
}

/** Items a queue holds (`delayedCount` is part of `pendingCount`). */
function heldItems(stats: ResourceLeaseQueueStats): number {
  return stats.pendingCount + stats.activeLeaseCount + stats.deadLetterCount;
}
