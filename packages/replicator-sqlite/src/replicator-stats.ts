import type { SqliteDurability } from "./options.js";

/** Counters of a {@link SqliteResourceLeaseReplicator}, for monitoring. */
export interface SqliteReplicatorStats {
  readonly durability: SqliteDurability;
  /** Last committed sequence number. */
  readonly lastCommittedSequence: number;
  /** Last sequence number accepted by `publish` (committed or waiting for the next commit). */
  readonly lastAcceptedSequence: number;
  /** Events accepted but not yet committed. */
  readonly uncommittedEvents: number;
  /** SQLite transactions committed since open (each a group commit). */
  readonly commits: number;
  /** Events committed since open. */
  readonly committedEvents: number;
  /** Sequence number of the newest stored snapshot (0 when none). */
  readonly lastSnapshotSequence: number;
  /** True after a failed write: every publish rejects until the log is reopened. */
  readonly faulted: boolean;
  /** Sequence number in the high-water record beside the log, as last written (see `highWaterIntervalMs`). */
  readonly highWaterSequence: number;
}
