import type { ResourceLeaseOwnershipToken } from "../contracts/payload.js";

// The peers a PeerLeaseHealthTracker knows, bounded: idle peers are forgotten after a while, and the table never
// holds more than `maxPeers` of them while any is idle. Internal to the tracker; not exported from the package.

/** What the tracker keeps of one peer. */
export interface PeerState {
  /** Active leases by leaseId. */
  readonly leases: Map<string, ResourceLeaseOwnershipToken>;
  readonly metadata: Record<string, string>;
  lastHeartbeat?: number;
  lastDisconnect?: number;
  disconnected: boolean;
  pendingReassignments: number;
  /** When the tracker last recorded anything about the peer (tracker clock, not event time). */
  seenAt: number;
}

/** Settings of {@link PeerTable}. */
export interface PeerTableSettings {
  /** An idle peer unheard-of for longer than this is forgotten, ms. */
  readonly forgetIdleAfterMs: number;
  /** Most peers kept while some of them are idle. */
  readonly maxPeers: number;
  /** Whether an otherwise idle peer must be kept now (e.g. while it is ejected). */
  readonly pinned: (peerId: string, now: number) => boolean;
  /** Called for each peer the table forgets on its own, after it is gone. */
  readonly forgotten: (peerId: string) => void;
}

/** Entries looked at, at most, to make room for one new peer (non-idle ones move to the back as they are passed). */
const EVICTION_SCAN_BUDGET = 1_024;

/**
 * Peer states in order of last mention (least recently heard-of first). A peer is idle when it holds no lease, has
 * no pending reassignment and is not pinned. Idle peers are forgotten by a sweep that runs lazily, at most once per
 * sweep interval (a quarter of the forget age, 1 s to 60 s), on the next mention or listing; a new peer beyond
 * `maxPeers` evicts the least recently heard-of idle peer. A peer that is not idle is never forgotten or evicted.
 */
export class PeerTable {
  private readonly peers = new Map<string, PeerState>();
  private readonly sweepEveryMs: number;
  private nextSweepAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly settings: PeerTableSettings) {
    this.sweepEveryMs = Math.min(60_000, Math.max(1_000, settings.forgetIdleAfterMs / 4));
  }

  get size(): number {
    return this.peers.size;
  }

  get(peerId: string): PeerState | undefined {
    return this.peers.get(peerId);
  }

  /** Every known peer id, in no particular order. */
  ids(): IterableIterator<string> {
    return this.peers.keys();
  }

  /** The state of `peerId`, created when new, and marked heard-of at `now`. */
  mention(peerId: string, now: number): PeerState {
    this.sweepIfDue(now);
    const known = this.peers.get(peerId);
    if (known) {
      // Moved to the back (most recently heard-of) once per millisecond at most: a busy peer is mentioned by every
      // event of its leases, and the order only needs the tracker clock's resolution.
      if (now > known.seenAt) {
        known.seenAt = now;
        this.peers.delete(peerId);
        this.peers.set(peerId, known);
      }
      return known;
    }
    this.makeRoom(now);
    const state = { leases: new Map(), metadata: {}, disconnected: false, pendingReassignments: 0, seenAt: now };
    this.peers.set(peerId, state);
    return state;
  }

  /** Removes `peerId` (whatever its state); returns whether it was known. Does not call `forgotten`. */
  delete(peerId: string): boolean {
    return this.peers.delete(peerId);
  }

  /** Forgets the idle peers unheard-of for longer than the forget age, when a sweep is due at `now`. */
  sweepIfDue(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + this.sweepEveryMs;
    const cutoff = now - this.settings.forgetIdleAfterMs;
    const stale: string[] = [];
    for (const [peerId, state] of this.peers) {
      if (state.seenAt < cutoff && this.idle(peerId, state, now)) stale.push(peerId);
    }
    for (const peerId of stale) this.drop(peerId);
  }

  private idle(peerId: string, state: PeerState, now: number): boolean {
    return state.leases.size === 0 && state.pendingReassignments === 0 && !this.settings.pinned(peerId, now);
  }

  /** Evicts least recently heard-of idle peers until a new one fits (or the scan budget is spent). */
  private makeRoom(now: number): void {
    if (this.peers.size < this.settings.maxPeers) return;
    const passed: Array<[string, PeerState]> = [];
    const evict: string[] = [];
    let excess = this.peers.size - this.settings.maxPeers + 1;
    for (const [peerId, state] of this.peers) {
      if (excess === 0 || passed.length + evict.length >= EVICTION_SCAN_BUDGET) break;
      if (this.idle(peerId, state, now)) {
        evict.push(peerId);
        excess--;
      } else {
        passed.push([peerId, state]);
      }
    }
    for (const peerId of evict) this.drop(peerId);
    // Busy peers passed over go to the back, so the next scan does not walk past them again.
    for (const [peerId, state] of passed) {
      this.peers.delete(peerId);
      this.peers.set(peerId, state);
    }
  }

  private drop(peerId: string): void {
    this.peers.delete(peerId);
    this.settings.forgotten(peerId);
  }
}
