import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/**
 * Progress of a checkpointing sink. Every event with `sequenceNumber <= sequence` counts as applied (or was given up
 * on, see `gapsSkipped`); `appliedAbove` lists the events above it that were applied out of order.
 */
export interface ResourceLeaseCheckpoint {
  /** Highest sequence number up to which everything is applied (0 before the first event). */
  readonly sequence: number;
  /** Sequence numbers above `sequence` that were applied, ascending. */
  readonly appliedAbove: readonly number[];
  /** How many sequence numbers the checkpoint jumped over without applying them (out-of-order window overflow). */
  readonly gapsSkipped: number;
}

/** Persists the checkpoint of one sink (one key per consumer). */
export interface ResourceLeaseCheckpointStore {
  /** The saved checkpoint, or `undefined` when nothing was saved yet. */
  load(): Promise<ResourceLeaseCheckpoint | undefined>;
  /** Replaces the saved checkpoint. Called with checkpoints that only move forward. */
  save(checkpoint: ResourceLeaseCheckpoint): Promise<void>;
}

function copy(checkpoint: ResourceLeaseCheckpoint): ResourceLeaseCheckpoint {
  return {
    sequence: checkpoint.sequence,
    appliedAbove: [...checkpoint.appliedAbove],
    gapsSkipped: checkpoint.gapsSkipped,
  };
}

/** A {@link ResourceLeaseCheckpointStore} in memory (tests, or sinks whose target keeps no state across restarts). */
export class InMemoryResourceLeaseCheckpointStore implements ResourceLeaseCheckpointStore {
  private current: ResourceLeaseCheckpoint | undefined;
  private saveCount = 0;

  /** @param initial - a checkpoint to start from. @defaultValue none (load returns `undefined`) */
  constructor(initial?: ResourceLeaseCheckpoint) {
    this.current = initial === undefined ? undefined : copy(initial);
  }

  /** Returns a copy of the saved checkpoint. */
  async load(): Promise<ResourceLeaseCheckpoint | undefined> {
    return this.current === undefined ? undefined : copy(this.current);
  }

  /** Stores a copy, so later changes by the caller do not affect it. */
  async save(checkpoint: ResourceLeaseCheckpoint): Promise<void> {
    this.current = copy(checkpoint);
    this.saveCount++;
  }

  /** Number of `save` calls so far. */
  get saves(): number {
    return this.saveCount;
  }
}

/**
 * Checks a checkpoint read from a store and returns a clean copy. Internal.
 * @throws OmniRelayError data-loss `resourcelease.replication.checkpoint_invalid` naming the bad field.
 */
export function validateCheckpoint(value: unknown): ResourceLeaseCheckpoint {
  const bad = (field: string): never => {
    throw new OmniRelayError({
      status: "data-loss",
      code: ErrorCodes.replication.checkpointInvalid,
      message: `Stored checkpoint has an invalid ${field}.`,
      metadata: {
        field,
      },
    });
  };
  if (typeof value !== "object" || value === null) return bad("checkpoint");
  const cp = value as Partial<Record<keyof ResourceLeaseCheckpoint, unknown>>;
  const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  const sequence = isCount(cp.sequence) ? cp.sequence : bad("sequence");
  const gapsSkipped = cp.gapsSkipped === undefined ? 0 : isCount(cp.gapsSkipped) ? cp.gapsSkipped : bad("gapsSkipped");
  const above =
    cp.appliedAbove === undefined ? [] : Array.isArray(cp.appliedAbove) ? cp.appliedAbove : bad("appliedAbove");
  const appliedAbove: number[] = [];
  for (const n of above) {
    if (!isCount(n) || n <= sequence) bad("appliedAbove");
    appliedAbove.push(n as number);
  }
  appliedAbove.sort((a, b) => a - b);
  return { sequence, appliedAbove, gapsSkipped };
}
