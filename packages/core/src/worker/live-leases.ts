import type { Logger } from "../contracts/health.js";
import type { ResourceLeaseGrant, ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { LeaseRun } from "./lease-run.js";

/**
 * What a worker does with a grant, given the leases it already holds:
 * - `take`: nothing of this item is held: run or hold it;
 * - `duplicate`: the very lease (same sequence id, lease id and fencing token) is already running, held or being
 *   settled: the grant is dropped — not run, not settled (settling it would settle the live one's lease);
 * - `conflict`: another lease of the same item is running or held: this one is handed back (failed with requeue,
 *   under its own token), so two handlers never run at once for one item. The one running goes on; whether the
 *   dispatcher superseded it (a newer fencing token) its next renewal or its completion tells (`fenced`).
 */
export type GrantVerdict = "take" | "duplicate" | "conflict";

/** The worker's leases by sequence id, from grant until settled (its completion or fail answered). Internal. */
export class LiveLeases {
  private readonly bySequence = new Map<number, LeaseRun>();
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Judges a grant (see {@link GrantVerdict}) against the worker's running and held runs. */
  verdict(grant: ResourceLeaseGrant, runs: ReadonlySet<LeaseRun>, held: readonly LeaseRun[]): GrantVerdict {
    const live = this.bySequence.get(grant.ownershipToken.sequenceId);
    if (!live) return "take";
    if (sameLease(live.token, grant.ownershipToken)) {
      const { sequenceId, attempt } = grant.ownershipToken;
      this.logger.warn({ sequenceId, attempt }, "Dropped a duplicate grant of a lease the worker already holds.");
      return "duplicate";
    }
    // A new lease of an item whose handler has returned (its settlement under way) runs: the two never overlap.
    return runs.has(live) || held.includes(live) ? "conflict" : "take";
  }

  add(run: LeaseRun): void {
    this.bySequence.set(run.token.sequenceId, run);
  }

  /** The run is done with (settled, lost, handed back): forgets it unless a newer lease of its item replaced it. */
  forget(run: LeaseRun): void {
    if (this.bySequence.get(run.token.sequenceId) === run) this.bySequence.delete(run.token.sequenceId);
  }
}

function sameLease(a: ResourceLeaseOwnershipToken, b: ResourceLeaseOwnershipToken): boolean {
  return a.sequenceId === b.sequenceId && a.leaseId === b.leaseId && a.fencingToken === b.fencingToken;
}

/** Why a grant no handler will run goes back to the queue: the worker is closing, has no free slot, or a conflict. */
export function handBackReason(closing: boolean, conflict: boolean): { reason: OmniRelayError; text: string } {
  const text = closing
    ? "worker shutting down"
    : conflict
      ? "worker already runs this item under another lease"
      : "worker has no free slot";
  const reason = new OmniRelayError({
    status: "unavailable",
    code: closing ? ErrorCodes.worker.shuttingDown : ErrorCodes.worker.noFreeSlot,
    message: `The worker cannot take this item: ${text}.`,
  });
  return { reason, text };
}
