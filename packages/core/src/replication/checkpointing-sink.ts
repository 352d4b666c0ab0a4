import type { CallOptions, ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "../contracts/events.js";
import { type Logger, silentLogger } from "../contracts/health.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock } from "../util/clock.js";
import { MinHeap } from "../util/heap.js";
import { integerOption } from "../wire/options.js";
import {
  type ResourceLeaseCheckpoint,
  type ResourceLeaseCheckpointStore,
  validateCheckpoint,
} from "./checkpoint-store.js";
import { cancelledError, invoke, replicationFailure } from "./errors.js";

/** Options of {@link CheckpointingResourceLeaseReplicationSink}. */
export interface CheckpointingResourceLeaseReplicationSinkOptions {
  /** The sink that does the work; it sees each sequence number at most once per checkpoint history. */
  readonly inner: ResourceLeaseReplicationSink;
  /** Where the checkpoint is loaded from and saved to. @defaultValue none (the checkpoint lives in memory only) */
  readonly store?: ResourceLeaseCheckpointStore;
  /** Checkpoint to start from when the store has none: events up to it count as applied. @defaultValue 0 */
  readonly initialSequence?: number;
  /**
   * Most applied events kept above a missing one. When more arrive, the checkpoint gives up on the oldest gap,
   * moves past it and counts the skipped numbers in `gapsSkipped`. @defaultValue 10000
   */
  readonly maxOutOfOrderWindow?: number;
  /**
   * Called after the inner sink applied an event, with `lagMs` = now − `event.timestamp` (floored at 0).
   * Exceptions and rejections are logged and otherwise ignored.
   */
  readonly onApplied?: (event: ResourceLeaseReplicationEvent, lagMs: number) => void | Promise<void>;
  /** @defaultValue systemClock */
  readonly clock?: Clock;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/**
 * Wraps a sink so it applies every event exactly once per checkpoint history, whatever order events arrive in.
 * (A wrapper rather than the seed's abstract base class, so it composes with any sink — the deterministic
 * coordinator, a hub client — without subclassing.)
 *
 * - Replays are skipped: an event at or below the checkpoint, or applied above it, is not applied again.
 * - Out-of-order arrival loses nothing (the original dropped anything older than the newest event seen): the
 *   checkpoint is the highest contiguous applied sequence plus the set of applied sequences above it.
 * - Concurrent `apply` calls with the same sequence number apply it once; all of them see the outcome.
 * - A failed inner apply does not mark the event, so a retry applies it.
 * - With a `store`, the checkpoint is loaded before the first apply and saved after every applied event, before
 *   `apply` resolves; saves are serialised and coalesced (a save always writes the newest state). A fresh sink
 *   on the same store skips everything already applied. A crash between the inner apply and the save means the
 *   event is applied again after restart (at-least-once), so inner sinks should be idempotent per sequence.
 * - An event that arrives after the window overflow moved the checkpoint past it is skipped (counted in
 *   `gapsSkipped` when the checkpoint moved, not again on arrival).
 */
export class CheckpointingResourceLeaseReplicationSink implements ResourceLeaseReplicationSink {
  private readonly inner: ResourceLeaseReplicationSink;
  private readonly store: ResourceLeaseCheckpointStore | undefined;
  private readonly window: number;
  private readonly onApplied: CheckpointingResourceLeaseReplicationSinkOptions["onApplied"];
  private readonly clock: Clock;
  private readonly logger: Logger;
  private sequence: number;
  private gaps = 0;
  private readonly above = new Set<number>();
  private readonly aboveHeap = new MinHeap<number>((a, b) => a < b);
  private readonly inFlight = new Map<number, Promise<void>>();
  private loading: Promise<void> | undefined;
  private queuedSave: Promise<void> | undefined;
  private lastSave: Promise<void> = Promise.resolve();

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`. */
  constructor(options: CheckpointingResourceLeaseReplicationSinkOptions) {
    if (typeof options?.inner?.apply !== "function")
      throw OmniRelayError.invalidOption("inner", "inner must be a replication sink.");
    const initial = integerOption("initialSequence", options.initialSequence, { min: 0, fallback: 0 });
    const window = integerOption("maxOutOfOrderWindow", options.maxOutOfOrderWindow, { min: 0, fallback: 10_000 });
    if (
      options.store !== undefined &&
      (typeof options.store.load !== "function" || typeof options.store.save !== "function")
    ) {
      throw OmniRelayError.invalidOption("store", "store must have load() and save().");
    }
    this.inner = options.inner;
    this.store = options.store;
    this.window = window;
    this.onApplied = options.onApplied;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.sequence = initial;
    if (this.store === undefined) this.loading = Promise.resolve();
  }

  /** The current checkpoint (a copy). Before the store was loaded it is the initial one. */
  checkpoint(): ResourceLeaseCheckpoint {
    const appliedAbove = [...this.above].sort((a, b) => a - b);
    return { sequence: this.sequence, appliedAbove, gapsSkipped: this.gaps };
  }

  /** How many sequence numbers the checkpoint moved past without applying them. */
  get gapsSkipped(): number {
    return this.gaps;
  }

  /** Whether the event with this sequence number counts as applied. */
  isApplied(sequence: number): boolean {
    return sequence <= this.sequence || this.above.has(sequence);
  }

  /**
   * Loads the checkpoint from the store (once; later calls return the same promise). `apply` calls it itself.
   * @throws OmniRelayError data-loss `resourcelease.replication.checkpoint_invalid`, or the store's failure with
   *   `replication.stage=checkpoint.load`. A failed load is retried by the next call.
   */
  async load(): Promise<ResourceLeaseCheckpoint> {
    if (this.loading === undefined) {
      const store = this.store as ResourceLeaseCheckpointStore;
      const loading = invoke(() => store.load()).then(
        (stored) => {
          if (stored !== undefined) this.restore(validateCheckpoint(stored));
        },
        (error: unknown) => {
          this.loading = undefined;
          throw replicationFailure(error, { "replication.stage": "checkpoint.load" });
        },
      );
      this.loading = loading;
    }
    await this.loading;
    return this.checkpoint();
  }

  /**
   * Applies `event` through the inner sink unless it was applied before.
   * @throws OmniRelayError invalid-argument `resourcelease.replication.event_invalid` for a sequence number below 1;
   *   the inner sink's failure with `replication.stage=checkpoint.apply` and `replication.sequence`; a store failure
   *   with `replication.stage=checkpoint.save` (the event is applied and marked; only persistence failed);
   *   cancelled `resourcelease.cancelled` when `signal` aborted before the inner apply.
   */
  async apply(event: ResourceLeaseReplicationEvent, options: CallOptions = {}): Promise<void> {
    const seq = event.sequenceNumber;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.replication.eventInvalid,
        message: "Event sequenceNumber must be >= 1.",
        metadata: {
          field: "sequenceNumber",
          "replication.sequence": String(seq),
        },
      });
    }
    await this.load();
    if (this.isApplied(seq)) return;
    const running = this.inFlight.get(seq);
    if (running !== undefined) return running;
    const attempt = this.applyOnce(event, options);
    this.inFlight.set(seq, attempt);
    try {
      await attempt;
    } finally {
      this.inFlight.delete(seq);
    }
  }

  private async applyOnce(event: ResourceLeaseReplicationEvent, options: CallOptions): Promise<void> {
    const seq = event.sequenceNumber;
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      await invoke(() => this.inner.apply(event, options));
    } catch (error) {
      throw replicationFailure(error, { "replication.stage": "checkpoint.apply", "replication.sequence": String(seq) });
    }
    this.markApplied(seq);
    this.notifyApplied(event);
    if (this.store === undefined) return;
    try {
      await this.persist(this.store);
    } catch (error) {
      throw replicationFailure(error, { "replication.stage": "checkpoint.save", "replication.sequence": String(seq) });
    }
  }

  private restore(checkpoint: ResourceLeaseCheckpoint): void {
    this.sequence = checkpoint.sequence;
    this.gaps = checkpoint.gapsSkipped;
    this.above.clear();
    this.aboveHeap.clear();
    for (const n of checkpoint.appliedAbove) {
      this.above.add(n);
      this.aboveHeap.push(n);
    }
    this.absorb();
  }

  private markApplied(seq: number): void {
    if (this.isApplied(seq)) return;
    this.above.add(seq);
    this.aboveHeap.push(seq);
    this.absorb();
    while (this.above.size > this.window) {
      const oldest = this.aboveHeap.peek() as number;
      this.gaps += oldest - this.sequence - 1;
      this.sequence = oldest - 1;
      this.absorb();
    }
  }

  /** Moves the checkpoint over applied events that are now contiguous with it. */
  private absorb(): void {
    while (this.aboveHeap.peek() === this.sequence + 1) {
      this.aboveHeap.pop();
      this.above.delete(this.sequence + 1);
      this.sequence++;
    }
  }

  private notifyApplied(event: ResourceLeaseReplicationEvent): void {
    const callback = this.onApplied;
    if (callback === undefined) return;
    const lagMs = Math.max(0, this.clock.now() - event.timestamp);
    const report = (error: unknown) =>
      this.logger.warn({ err: error, sequence: event.sequenceNumber }, "checkpointing sink onApplied callback failed");
    try {
      const result = callback(event, lagMs);
      if (result !== undefined && typeof result.then === "function") result.then(undefined, report);
    } catch (error) {
      report(error);
    }
  }

  /** Saves the newest checkpoint after any save in progress; callers that arrive while one is queued share it. */
  private persist(store: ResourceLeaseCheckpointStore): Promise<void> {
    if (this.queuedSave !== undefined) return this.queuedSave;
    const next = this.lastSave
      .catch(() => undefined)
      .then(() => {
        this.queuedSave = undefined;
        return invoke(() => store.save(this.checkpoint()));
      });
    this.queuedSave = next;
    this.lastSave = next;
    return next;
  }
}
