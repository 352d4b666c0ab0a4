import { createHash } from "node:crypto";

/**
 * The weight of `node` for `shard` in rendezvous (highest-random-weight) hashing: the first 48 bits of
 * SHA-256(`shard` NUL `node`). Every node computes the same weights without talking to the others.
 */
export function rendezvousWeight(shard: string, node: string): number {
  return createHash("sha256").update(shard).update("\0").update(node).digest().readUIntBE(0, 6);
}

/**
 * The node a shard belongs on among `nodes`: the one with the highest {@link rendezvousWeight} (ties, which need a
 * 48-bit collision, go to the smaller id). When a node joins, it takes only the shards where it now weighs most;
 * when one leaves, only its shards move, each to the node that weighs next most. `undefined` when `nodes` is empty.
 */
export function rendezvousNode(shard: string, nodes: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of nodes) {
    const weight = rendezvousWeight(shard, node);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = weight;
    }
  }
  return best;
}

/** What {@link placeShards} places. */
export interface ShardPlacementInput {
  readonly shards: Iterable<string>;
  /** Node ids of the live members. */
  readonly nodes: Iterable<string>;
  /** Operators' pins, shard → node id: honoured while that node is a live member. */
  readonly pins?: ReadonlyMap<string, string>;
}

/**
 * Where each shard belongs: on its pinned node when the pin names a live member, else on its
 * {@link rendezvousNode}. Shards are left out when there are no members.
 */
export function placeShards(input: ShardPlacementInput): Map<string, string> {
  const nodes = [...new Set(input.nodes)];
  const live = new Set(nodes);
  const out = new Map<string, string>();
  for (const shard of input.shards) {
    const pinned = input.pins?.get(shard);
    const node = pinned !== undefined && live.has(pinned) ? pinned : rendezvousNode(shard, nodes);
    if (node !== undefined) out.set(shard, node);
  }
  return out;
}
