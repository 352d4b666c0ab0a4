import type { Logger } from "../contracts/health.js";
import type { Clock } from "../util/clock.js";
import type { PeerEjectionOptions } from "./peer-ejection.js";

// The public option, input and output shapes of PeerLeaseHealthTracker, apart from its bookkeeping.

/** What {@link PeerLeaseHealthTrackerOptions.onDisconnect} receives when a peer becomes disconnected. */
export interface PeerDisconnectAlert {
  readonly peerId: string;
  /** Why, e.g. `"gossip-left"`; `"unknown"` when no reason was given. */
  readonly reason: string;
  /** When, ms since the epoch. */
  readonly at: number;
}

/** Options of {@link PeerLeaseHealthTracker}. */
export interface PeerLeaseHealthTrackerOptions {
  /**
   * How long a peer stays healthy after its last liveness signal.
   * @defaultValue 30000
   */
  readonly gracePeriodMs?: number;
  /**
   * How long an idle peer is remembered after the tracker last heard of it (any signal, event, disconnect or gossip
   * naming it), ms; then it is forgotten as by `forget`. Idle: it holds no lease, has no pending reassignment and,
   * with `ejection`, is neither ejected nor within `maxEjectionMs` of its last ejection's end nor counted in the
   * expiry-rate interval not judged yet; a peer that is not idle is never forgotten. Forgetting is lazy and cheap:
   * at most one sweep per quarter of this age (1 s to 60 s), on the tracker's next call that records something or
   * takes a snapshot, so a peer goes within that much more. A forgotten peer is unknown again: absent from
   * snapshots (its `peer` metric label is freed), eligible like any new peer (remove a worker that is gone from a
   * chooser's `PeerList`), and its consecutive-expiry count restarts. Must be at least the grace period.
   * @defaultValue 4 × `gracePeriodMs`, at least 1000 (2 min with the default grace)
   */
  readonly forgetIdleAfterMs?: number;
  /**
   * Most peers tracked at once. A new peer beyond it first evicts the least recently heard-of idle peer (see
   * `forgetIdleAfterMs`); peers that are not idle (leases, pending reassignments, ejection state) are never evicted,
   * so only they can take the count past it. Bounds the memory, snapshots and `/lease-health` of a tracker fed made-up
   * peer ids.
   * @defaultValue 10000
   */
  readonly maxPeers?: number;
  /** Time source. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** Receives warnings (a failing callback, a malformed event). @defaultValue `silentLogger` */
  readonly logger?: Logger;
  /**
   * Called when a peer goes from connected to disconnected. Exceptions and rejections are logged, never rethrown.
   * @defaultValue none
   */
  readonly onDisconnect?: (alert: PeerDisconnectAlert) => void;
  /**
   * Outlier ejection of peers whose leases keep expiring (see {@link PeerEjectionOptions}); `{}` turns it on with
   * the defaults.
   * @defaultValue none (no peer is ever ejected)
   */
  readonly ejection?: PeerEjectionOptions;
}

/** Optional details of a lease assignment, kept as peer metadata `resource.type` / `resource.id`. */
export interface PeerLeaseAssignmentInfo {
  readonly resourceType?: string;
  readonly resourceId?: string;
}

/** How a lease ended. */
export interface PeerLeaseReleaseInfo {
  /** True when the item went back to the queue (it counts as a pending reassignment of the peer). */
  readonly requeued: boolean;
}

/** Options of {@link PeerLeaseHealthTracker.recordGossip}. */
export interface PeerGossipOptions {
  /** `'alive'` counts as liveness and clears a disconnect; `'left'` records a disconnect (`gossip-left`). */
  readonly status?: "alive" | "left";
}

/** Totals of the signals a tracker has recorded (feeds `omnirelay.peer.lease_*` counters). */
export interface PeerLeaseHealthStats {
  /** Lease assignments recorded. */
  readonly assignments: number;
  /** Lease heartbeats recorded (polls are not counted here). */
  readonly heartbeats: number;
  /** Transitions of a peer from connected to disconnected. */
  readonly disconnects: number;
  /** Peers ejected by outlier detection (each ejection counted once). */
  readonly ejections: number;
}
