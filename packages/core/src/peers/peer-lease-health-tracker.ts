import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import {
  type Logger,
  type PeerHealthSnapshotProvider,
  type PeerLeaseHealthSnapshot,
  silentLogger,
} from "../contracts/health.js";
import type { ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock } from "../util/clock.js";
import { integerOption, numberOption } from "../wire/options.js";
import { callSafely } from "./callbacks.js";
import { type PeerEjection, PeerEjector } from "./peer-ejection.js";
import type {
  PeerDisconnectAlert,
  PeerGossipOptions,
  PeerLeaseAssignmentInfo,
  PeerLeaseHealthStats,
  PeerLeaseHealthTrackerOptions,
  PeerLeaseReleaseInfo,
} from "./peer-lease-health-types.js";
import { type PeerState, PeerTable } from "./peer-table.js";

interface LeaseOwner {
  readonly peerId: string;
  readonly token: ResourceLeaseOwnershipToken;
  /** When the lease was granted or last renewed, and when it expires then (from the log's events; for lateness). */
  renewedAt?: number;
  expiresAt?: number;
}

function requirePeerId(peerId: string): void {
  if (typeof peerId !== "string" || peerId.trim() === "") {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.peers.argumentInvalid,
      message: "A peer id must be a non-blank string.",
      metadata: {
        field: "peerId",
      },
    });
  }
}

function isBlank(value: string | undefined): value is undefined {
  return value === undefined || value.trim() === "";
}

/**
 * Tracks the lease health of worker peers. Feed it the queue's replication events with {@link observe} (so every
 * lease it knows of follows the queue's one lease table) and lease polls with {@link recordPoll}; choosers ask
 * {@link isPeerEligible}. A peer is healthy while it is not disconnected and its last liveness signal (assignment,
 * heartbeat, release, poll, alive gossip) is no older than the grace period. A poison-message report
 * (fail without requeue) is a liveness signal, never a disconnect. With the `ejection` option, a peer whose leases
 * keep expiring is ejected for a while (see {@link PeerEjectionOptions}): ineligible, unhealthy in snapshots, and
 * refused new leases by the dispatcher. Memory stays bounded: an idle peer is forgotten after `forgetIdleAfterMs`,
 * and at most `maxPeers` are kept (see {@link PeerLeaseHealthTrackerOptions}).
 */
export class PeerLeaseHealthTracker implements PeerHealthSnapshotProvider {
  private readonly gracePeriodMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onDisconnect: ((alert: PeerDisconnectAlert) => void) | undefined;
  private readonly peers: PeerTable;
  /** The active lease of each item, by sequenceId. */
  private readonly leaseOwners = new Map<number, LeaseOwner>();
  /** Items that went back to the queue, by sequenceId → the peer whose lease ended. */
  private readonly requeuedBy = new Map<number, string>();
  private readonly ejector: PeerEjector | undefined;
  private assignments = 0;
  private heartbeats = 0;
  private disconnects = 0;

  /**
   * @throws OmniRelayError `invalid-argument` `resourcelease.options.invalid` when `gracePeriodMs` is not a finite
   * number >= 0, `forgetIdleAfterMs` is not a finite number >= the grace period, `maxPeers` is not an integer >= 1,
   * or an `ejection` option is out of range.
   */
  constructor(options: PeerLeaseHealthTrackerOptions = {}) {
    const grace = numberOption("gracePeriodMs", options.gracePeriodMs, { min: 0, fallback: 30_000 });
    this.gracePeriodMs = grace;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.onDisconnect = options.onDisconnect;
    this.ejector = options.ejection ? new PeerEjector(options.ejection) : undefined;
    this.peers = new PeerTable({
      forgetIdleAfterMs: numberOption("forgetIdleAfterMs", options.forgetIdleAfterMs, {
        min: grace,
        fallback: Math.max(4 * grace, 1_000),
      }),
      maxPeers: integerOption("maxPeers", options.maxPeers, { min: 1, fallback: 10_000 }),
      pinned: (peerId, now) => this.ejector?.holds(peerId, now) ?? false,
      forgotten: (peerId) => this.ejector?.forget(peerId),
    });
  }

  /**
   * Records that `peerId` was granted the lease `token`; a liveness signal. Resolves a pending reassignment of
   * the same item and supersedes any older lease on it.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordLeaseAssignment(peerId: string, token: ResourceLeaseOwnershipToken, info?: PeerLeaseAssignmentInfo): void {
    requirePeerId(peerId);
    this.assign(peerId, token, { info, at: this.clock.now() });
  }

  /**
   * Records a heartbeat of `peerId`; a liveness signal. With a token, the lease is (re)added if the tracker missed
   * its grant.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordLeaseHeartbeat(peerId: string, token?: ResourceLeaseOwnershipToken): void {
    requirePeerId(peerId);
    this.heartbeat(peerId, token, { at: this.clock.now() });
  }

  /**
   * Records that the lease `token` of `peerId` ended (completed or failed by the peer); a liveness signal.
   * When `requeued`, the item counts as a pending reassignment of the peer until it is granted again,
   * dead-lettered or drained.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordLeaseReleased(peerId: string, token: ResourceLeaseOwnershipToken, info: PeerLeaseReleaseInfo): void {
    requirePeerId(peerId);
    this.release(peerId, token, { requeued: info.requeued, alive: true, at: this.clock.now() });
  }

  /**
   * Records a lease poll by `peerId`, even one that returned nothing: an idle worker long-polling stays healthy.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordPoll(peerId: string): void {
    requirePeerId(peerId);
    this.touch(peerId, this.clock.now());
  }

  /**
   * Marks `peerId` disconnected (unhealthy and ineligible until its next liveness signal). Alerts through
   * `onDisconnect` only when the peer was connected before.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordDisconnect(peerId: string, reason?: string): void {
    requirePeerId(peerId);
    const at = this.clock.now();
    const state = this.state(peerId);
    const why = isBlank(reason) ? "unknown" : reason;
    state.lastDisconnect = at;
    state.metadata["disconnect.reason"] = why;
    if (state.disconnected) return;
    state.disconnected = true;
    this.disconnects++;
    this.logger.info({ peerId, reason: why }, "peer disconnected");
    this.alert({ peerId, reason: why, at });
  }

  /**
   * Merges gossip metadata of `peerId` (blank keys are skipped). Status `'alive'` is a liveness signal and clears
   * a disconnect; `'left'` records a disconnect with reason `gossip-left`.
   * @throws OmniRelayError `invalid-argument` `peers.argument_invalid` when `peerId` is blank.
   */
  recordGossip(peerId: string, metadata: Readonly<Record<string, string>>, options: PeerGossipOptions = {}): void {
    requirePeerId(peerId);
    const state = this.state(peerId);
    for (const [key, value] of Object.entries(metadata)) {
      if (key.trim() === "" || typeof value !== "string") continue;
      state.metadata[key] = value;
    }
    if (options.status === "alive") this.touch(peerId, this.clock.now());
    else if (options.status === "left") this.recordDisconnect(peerId, "gossip-left");
  }

  /**
   * Applies one replication event of the queue. Events without a peer id change no peer's health but still keep
   * the lease and reassignment bookkeeping in step. A lease expiry is not a liveness signal. Never throws.
   */
  observe(event: ResourceLeaseReplicationEvent): void {
    try {
      this.apply(event);
    } catch (err) {
      this.logger.warn({ err, sequenceNumber: event.sequenceNumber }, "peer health tracker could not apply an event");
    }
  }

  /**
   * Whether `peerId` may receive work: an unknown peer or a known peer never seen alive is eligible unless
   * disconnected or ejected.
   */
  isPeerEligible(peerId: string): boolean {
    const state = this.peers.get(peerId);
    if (!state) return true;
    if (state.disconnected || this.ejection(peerId)) return false;
    return state.lastHeartbeat === undefined || this.clock.now() - state.lastHeartbeat <= this.gracePeriodMs;
  }

  /** The ejection of `peerId` in force now (why, until when), if any; always none without the `ejection` option. */
  ejection(peerId: string): PeerEjection | undefined {
    return this.ejector?.current(peerId, this.clock.now());
  }

  /**
   * Health of every known peer, sorted by peer id; an ejected peer is unhealthy and says why and until when. Idle
   * peers past `forgetIdleAfterMs` are forgotten first (see {@link PeerLeaseHealthTrackerOptions.forgetIdleAfterMs}).
   */
  snapshot(): readonly PeerLeaseHealthSnapshot[] {
    const now = this.clock.now();
    this.peers.sweepIfDue(now);
    const ids = [...this.peers.ids()].sort();
    return ids.map((peerId) => {
      const state = this.peers.get(peerId) as PeerState;
      const activeLeases = [...state.leases.values()].sort((a, b) => a.sequenceId - b.sequenceId);
      const ejection = this.ejector?.current(peerId, now);
      return {
        peerId,
        ...(state.lastHeartbeat === undefined ? {} : { lastHeartbeat: state.lastHeartbeat }),
        ...(state.lastDisconnect === undefined ? {} : { lastDisconnect: state.lastDisconnect }),
        isHealthy: !ejection && this.healthy(state, now),
        ...(ejection
          ? { ejectedUntil: ejection.ejectedUntil, ejectionReason: ejection.reason, ejections: ejection.ejections }
          : {}),
        activeLeases,
        pendingReassignments: state.pendingReassignments,
        metadata: { ...state.metadata },
      };
    });
  }

  /** Drops everything known about `peerId` (its leases and pending reassignments). Returns whether it was known. */
  forget(peerId: string): boolean {
    const state = this.peers.get(peerId);
    if (!state) return false;
    for (const token of state.leases.values()) {
      if (this.leaseOwners.get(token.sequenceId)?.peerId === peerId) this.leaseOwners.delete(token.sequenceId);
    }
    for (const [sequenceId, owner] of this.requeuedBy) if (owner === peerId) this.requeuedBy.delete(sequenceId);
    this.peers.delete(peerId);
    this.ejector?.forget(peerId);
    return true;
  }

  /** Totals of recorded assignments, heartbeats, disconnects and ejections. */
  stats(): PeerLeaseHealthStats {
    const ejections = this.ejector?.ejections ?? 0;
    return { assignments: this.assignments, heartbeats: this.heartbeats, disconnects: this.disconnects, ejections };
  }

  private apply(event: ResourceLeaseReplicationEvent): void {
    const peerId = isBlank(event.peerId) ? undefined : event.peerId;
    // A time from the log may be older than now (replay) but never later: clocks of other nodes may run ahead.
    const at = Math.min(event.timestamp, this.clock.now());
    const token = event.ownership;
    switch (event.eventType) {
      case "LeaseGranted":
        if (!token) return;
        if (peerId) {
          const info = { resourceType: event.payload?.resourceType, resourceId: event.payload?.resourceId };
          this.assign(peerId, token, { info, at, expiresAt: event.leaseExpiresAt });
        } else {
          this.resolveReassignment(token.sequenceId);
          this.dropLease(token.sequenceId);
        }
        return;
      case "Heartbeat":
        if (peerId) this.heartbeat(peerId, token, { at, expiresAt: event.leaseExpiresAt });
        return;
      case "Completed":
      case "Failed":
      case "LeaseExpired": {
        if (!token) return;
        const requeued =
          event.eventType === "LeaseExpired" ||
          (event.eventType === "Failed" && event.metadata["failure.requeued"] === "true");
        if (peerId) this.release(peerId, token, { requeued, alive: event.eventType !== "LeaseExpired", at });
        else this.dropLease(token.sequenceId, token.leaseId);
        if (peerId && event.eventType === "LeaseExpired") this.expired(peerId, at);
        return;
      }
      case "DeadLettered":
        if (event.item) this.resolveReassignment(event.item.sequenceId);
        return;
      case "DrainSnapshot":
        for (const item of event.items ?? []) this.resolveReassignment(item.sequenceId);
        return;
      default:
        return;
    }
  }

  private assign(
    peerId: string,
    token: ResourceLeaseOwnershipToken,
    { info, at, expiresAt }: { info: PeerLeaseAssignmentInfo | undefined; at: number; expiresAt?: number },
  ): void {
    const state = this.touch(peerId, at);
    this.resolveReassignment(token.sequenceId);
    this.dropLease(token.sequenceId);
    state.leases.set(token.leaseId, token);
    this.leaseOwners.set(token.sequenceId, { peerId, token, renewedAt: at, expiresAt });
    if (!isBlank(info?.resourceType)) state.metadata["resource.type"] = info.resourceType;
    if (!isBlank(info?.resourceId)) state.metadata["resource.id"] = info.resourceId;
    this.assignments++;
  }

  private heartbeat(
    peerId: string,
    token: ResourceLeaseOwnershipToken | undefined,
    { at, expiresAt }: { at: number; expiresAt?: number },
  ): void {
    const state = this.touch(peerId, at);
    this.heartbeats++;
    const current = token ? this.leaseOwners.get(token.sequenceId) : undefined;
    // A late heartbeat (past `lateHeartbeatShare` of its lease) is a near miss: bad for the expiry rate, and it does
    // not end a run of expiries.
    const late = current?.token.leaseId === token?.leaseId && this.late(current, at);
    if (!late) this.ejector?.recordSuccess(peerId);
    this.outcome(peerId, { bad: late, at });
    if (current && current.token.leaseId === token?.leaseId) {
      current.renewedAt = at;
      current.expiresAt = expiresAt;
    }
    if (!token) return;
    // Re-add a lease the tracker missed, but never let a stale token replace a newer grant.
    if (current && current.token.fencingToken >= token.fencingToken) return;
    this.dropLease(token.sequenceId);
    state.leases.set(token.leaseId, token);
    this.leaseOwners.set(token.sequenceId, { peerId, token, renewedAt: at, expiresAt });
  }

  private release(
    peerId: string,
    token: ResourceLeaseOwnershipToken,
    how: { requeued: boolean; alive: boolean; at: number },
  ): void {
    const state = how.alive ? this.touch(peerId, how.at) : this.state(peerId);
    if (how.alive) {
      this.ejector?.recordSuccess(peerId);
      this.outcome(peerId, { bad: false, at: how.at });
    }
    state.leases.delete(token.leaseId);
    this.dropLease(token.sequenceId, token.leaseId);
    if (!how.requeued) return;
    this.resolveReassignment(token.sequenceId);
    this.requeuedBy.set(token.sequenceId, peerId);
    state.pendingReassignments++;
  }

  /** Counts a lease expiry of `peerId` towards its ejection. */
  private expired(peerId: string, at: number): void {
    const ejection = this.ejector?.recordExpiry(peerId, { at, fleet: this.peers.size });
    if (ejection) this.ejected(ejection);
    this.outcome(peerId, { bad: true, at });
  }

  /** Counts a lease outcome for the fleet-relative rule; logs the ejections an interval's close started. */
  private outcome(peerId: string, outcome: { bad: boolean; at: number }): void {
    for (const ejection of this.ejector?.recordOutcome(peerId, { ...outcome, fleet: this.peers.size }) ?? []) {
      this.ejected(ejection);
    }
  }

  private ejected({ peerId, reason, ejectedUntil, ejections, expiryRate, fleetExpiryRate }: PeerEjection): void {
    this.logger.warn({ peerId, reason, ejectedUntil, ejections, expiryRate, fleetExpiryRate }, "peer ejected");
  }

  /** Whether a heartbeat at `at` came after the late share of its lease had run (unknown times: not late). */
  private late(owner: LeaseOwner | undefined, at: number): boolean {
    return this.ejector !== undefined && owner !== undefined && this.ejector.isLate(owner, at);
  }

  /** Forgets the active lease of an item (only the one with `leaseId`, when given). */
  private dropLease(sequenceId: number, leaseId?: string): void {
    const owner = this.leaseOwners.get(sequenceId);
    if (!owner || (leaseId !== undefined && owner.token.leaseId !== leaseId)) return;
    this.leaseOwners.delete(sequenceId);
    this.peers.get(owner.peerId)?.leases.delete(owner.token.leaseId);
  }

  /** The item left the requeued state (granted again, dead-lettered or drained). */
  private resolveReassignment(sequenceId: number): void {
    const peerId = this.requeuedBy.get(sequenceId);
    if (peerId === undefined) return;
    this.requeuedBy.delete(sequenceId);
    const state = this.peers.get(peerId);
    if (state && state.pendingReassignments > 0) state.pendingReassignments--;
  }

  private touch(peerId: string, at: number): PeerState {
    const state = this.state(peerId);
    state.disconnected = false;
    if (state.lastHeartbeat === undefined || at > state.lastHeartbeat) state.lastHeartbeat = at;
    return state;
  }

  /** The state of `peerId`, created when new; anything recorded about a peer marks it heard-of now. */
  private state(peerId: string): PeerState {
    return this.peers.mention(peerId, this.clock.now());
  }

  private healthy(state: PeerState, now: number): boolean {
    return !state.disconnected && state.lastHeartbeat !== undefined && now - state.lastHeartbeat <= this.gracePeriodMs;
  }

  private alert(alert: PeerDisconnectAlert): void {
    if (this.onDisconnect) callSafely(this.logger, alert.peerId, () => this.onDisconnect?.(alert));
  }
}
