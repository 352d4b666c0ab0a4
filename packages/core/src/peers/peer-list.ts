import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Peer } from "./peer.js";

/**
 * The set of peers a chooser picks from, shared by any number of choosers. Wakes waiting acquisitions when a peer
 * is added or reports a status change.
 */
export class PeerList {
  private readonly entries = new Map<string, { readonly peer: Peer; readonly unsubscribe: () => void }>();
  private waiters = new Set<() => void>();

  /** @param peers - initial peers. @defaultValue `[]` */
  constructor(peers: Iterable<Peer> = []) {
    for (const peer of peers) this.add(peer);
  }

  /** Number of peers. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Adds a peer and wakes waiters.
   * @throws OmniRelayError `already-exists` `peers.duplicate_peer` when a peer with the same id is present.
   */
  add(peer: Peer): void {
    if (this.entries.has(peer.id)) {
      throw new OmniRelayError({
        status: "already-exists",
        code: ErrorCodes.peers.duplicatePeer,
        message: `Peer '${peer.id}' is already in the list.`,
        metadata: {
          peerId: peer.id,
        },
      });
    }
    const unsubscribe = peer.onStatusChange?.(() => this.notifyChanged()) ?? (() => {});
    this.entries.set(peer.id, { peer, unsubscribe });
    this.notifyChanged();
  }

  /** Removes the peer with `id`; returns whether it was present. */
  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    entry.unsubscribe();
    return true;
  }

  /** The peer with `id`, if present. */
  get(id: string): Peer | undefined {
    return this.entries.get(id)?.peer;
  }

  /** Every peer, in the order they were added. */
  peers(): readonly Peer[] {
    return [...this.entries.values()].map((entry) => entry.peer);
  }

  /**
   * Wakes every acquisition waiting for a peer. Called automatically for peers that implement `onStatusChange`;
   * call it yourself when another kind of peer becomes available.
   */
  notifyChanged(): void {
    if (this.waiters.size === 0) return;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) {
      try {
        wake();
      } catch {
        // A waiter's failure must not stop the others from waking.
      }
    }
  }

  /**
   * Calls `listener` once, at the next change; returns a function that cancels the wait. Used by choosers.
   */
  onNextChange(listener: () => void): () => void {
    const wake = () => listener();
    this.waiters.add(wake);
    return () => {
      this.waiters.delete(wake);
    };
  }
}
