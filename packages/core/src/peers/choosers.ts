import type { Peer } from "./peer.js";
import { PeerChooserBase } from "./peer-chooser.js";

/** Tries available, eligible peers in turn, starting one further along on every acquisition. */
export class RoundRobinPeerChooser extends PeerChooserBase {
  private next = 0;

  protected override *order(candidates: readonly Peer[]): Iterable<Peer> {
    const n = candidates.length;
    if (n === 0) return;
    const start = this.next % n;
    this.next = (this.next + 1) % Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < n; i++) yield candidates[(start + i) % n]!;
  }
}

/** Tries the peer with the fewest calls in flight first; ties are broken uniformly at random. */
export class FewestPendingPeerChooser extends PeerChooserBase {
  protected override *order(candidates: readonly Peer[]): Iterable<Peer> {
    const shuffled = [...candidates];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = this.randomIndex(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    // Read each load once so the comparator is consistent; the sort is stable, so ties keep the random order.
    const load = new Map(shuffled.map((peer) => [peer, peer.status.inflight]));
    shuffled.sort((a, b) => load.get(a)! - load.get(b)!);
    yield* shuffled;
  }
}

/**
 * Power of two choices: picks two distinct peers at random and tries the one with fewer calls in flight first
 * (the first pick on a tie); repeats over the remaining peers.
 */
export class TwoRandomChoicesPeerChooser extends PeerChooserBase {
  protected override *order(candidates: readonly Peer[]): Iterable<Peer> {
    const rest = [...candidates];
    while (rest.length > 1) {
      const i = this.randomIndex(rest.length);
      let j = this.randomIndex(rest.length - 1);
      if (j >= i) j++;
      const pick = rest[j]!.status.inflight < rest[i]!.status.inflight ? j : i;
      yield rest.splice(pick, 1)[0]!;
    }
    if (rest.length === 1) yield rest[0]!;
  }
}
