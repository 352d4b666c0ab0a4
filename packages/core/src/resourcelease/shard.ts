import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/** Options of {@link createShardResolver}. */
export interface ShardResolverOptions {
  /** The shard namespaces, e.g. `['resourcelease.a', 'resourcelease.b']`. Order matters: keep it stable. */
  readonly namespaces: readonly string[];
  /** The shard key of a payload. @defaultValue the payload's `partitionKey` */
  readonly key?: (payload: ResourceLeaseItemPayload) => string;
}

/** Picks a payload's shard: returns the namespace and the key to send as `Rpc-Shard-Key`. */
export type ShardResolver = (payload: ResourceLeaseItemPayload) => { namespace: string; shardKey: string };

/** FNV-1a 32-bit hash: stable across processes and versions (unlike a random-seeded hash). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The seed's sharding strategy: hash a stable key of the payload onto one of several namespaces served as
 * components of one or more dispatchers. The same key always maps to the same shard, so a partition's items stay
 * together (and in order with `orderedPartitions`).
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` without namespaces.
 */
export function createShardResolver(options: ShardResolverOptions): ShardResolver {
  const namespaces = [...options.namespaces];
  if (namespaces.length === 0) {
    throw OmniRelayError.invalidOption("namespaces", "At least one namespace is required.");
  }
  const key = options.key ?? ((p: ResourceLeaseItemPayload) => p.partitionKey);
  return (payload) => {
    const shardKey = key(payload);
    return { namespace: namespaces[fnv1a(shardKey) % namespaces.length]!, shardKey };
  };
}
