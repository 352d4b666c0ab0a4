import type { Logger, ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "@omnirelay/core";
import type { DeterministicStateStore } from "@omnirelay/core/deterministic";
import { tagReplay } from "@omnirelay/core/replication";

/** A log a {@link LogFollower} can follow: the SQLite replicator, or a JetStream log with a commit signal. */
export interface FollowableLog {
  /** Events from `fromSequence` on, in order, at most `limit`. */
  read(fromSequence: number, limit?: number): AsyncIterable<ResourceLeaseReplicationEvent>;
  /** Calls `listener` after commits; returns the function that stops it. */
  onCommit(listener: () => void): () => void;
}

/** Options of a {@link LogFollower}. */
export interface LogFollowerOptions {
  readonly replicator: FollowableLog;
  readonly sink: ResourceLeaseReplicationSink;
  /** Where the follower's checkpoint is kept. */
  readonly checkpointStore: DeterministicStateStore;
  readonly checkpointKey: string;
  readonly logger: Logger;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A downstream consumer of a durable log: after each commit it reads the new events in order and applies them to a
 * sink, persisting its checkpoint, so a restart resumes where it stopped (the sink must tolerate a replay of the
 * last batch, which the deterministic coordinator does). The sink gets each event tagged `lease.replay`: `true` while
 * the follower catches up at start (the events committed before this process followed the log), `false` after.
 */
export class LogFollower {
  private lastSequence = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private catchingUp = false;
  private replayed = 0;

  constructor(private readonly options: LogFollowerOptions) {}

  /** Loads the checkpoint, catches up, then follows every commit. */
  async start(): Promise<void> {
    const saved = await this.options.checkpointStore.get(this.options.checkpointKey);
    if (saved) this.lastSequence = (JSON.parse(decoder.decode(saved.payload)) as { lastSequence: number }).lastSequence;
    this.unsubscribe = this.options.replicator.onCommit(() => this.kick());
    this.catchingUp = true;
    try {
      this.kick();
      await this.running;
    } finally {
      this.catchingUp = false;
    }
  }

  /** Events delivered tagged `lease.replay=true` (during the catch-up at start). */
  get replayedEvents(): number {
    return this.replayed;
  }

  /** The last sequence applied. */
  get checkpoint(): number {
    return this.lastSequence;
  }

  /** Stops following (after the batch in progress). */
  async close(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.running;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pump()
      .catch((err: unknown) =>
        this.options.logger.warn({ err }, "Replication follower failed; retrying on the next commit."),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      let applied = 0;
      for await (const event of this.options.replicator.read(this.lastSequence + 1, 500)) {
        if (this.stopped) break;
        if (this.catchingUp) this.replayed++;
        await this.options.sink.apply(tagReplay(event, this.catchingUp));
        this.lastSequence = event.sequenceNumber;
        applied++;
      }
      if (applied > 0) {
        await this.options.checkpointStore.set(this.options.checkpointKey, {
          kind: "mesh-demo.checkpoint",
          version: 1,
          payload: encoder.encode(JSON.stringify({ lastSequence: this.lastSequence })),
          recordedAt: Date.now(),
        });
      }
      if (applied < 500 || this.stopped) return;
    }
  }
}
