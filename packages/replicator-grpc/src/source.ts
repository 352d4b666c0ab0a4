import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** Identifies one ordered event stream at the hub: a dispatcher's node id and its shard (`''` when unsharded). */
export interface ReplicationSourceId {
  readonly nodeId: string;
  readonly shard: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True when `nodeId` (and `shard`, when not empty) are 1–128 characters of `[A-Za-z0-9._-]`, starting alphanumeric. */
export function isValidSourceId(source: ReplicationSourceId): boolean {
  return (
    typeof source?.nodeId === "string" &&
    NAME.test(source.nodeId) &&
    typeof source.shard === "string" &&
    (source.shard === "" || NAME.test(source.shard))
  );
}

/**
 * Validates a source id received from a peer or an option.
 * @throws OmniRelayError invalid-argument `resourcelease.replication.grpc.protocol` (metadata `field`).
 */
export function checkSourceId(source: ReplicationSourceId): ReplicationSourceId {
  if (isValidSourceId(source)) return { nodeId: source.nodeId, shard: source.shard };
  const field = typeof source?.nodeId === "string" && NAME.test(source.nodeId) ? "shard" : "nodeId";
  throw new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.replicationHub.protocol,
    message: `Invalid ${field}: node id and shard are 1-128 characters of [A-Za-z0-9._-] (shard may be empty).`,
    metadata: { field },
  });
}

/** A stable string key for a source: `nodeId` or `nodeId@shard`. The characters allowed in ids never include `@`. */
export function sourceKey(source: ReplicationSourceId): string {
  return source.shard === "" ? source.nodeId : `${source.nodeId}@${source.shard}`;
}

/** Parses a {@link sourceKey}; `undefined` for text that is not one. */
export function parseSourceKey(key: string): ReplicationSourceId | undefined {
  const at = key.indexOf("@");
  const source = at < 0 ? { nodeId: key, shard: "" } : { nodeId: key.slice(0, at), shard: key.slice(at + 1) };
  return isValidSourceId(source) ? source : undefined;
}

/** The error of a call naming a source the hub has no log for. Internal. */
export function sourceNotFound(id: { nodeId: string; shard: string }): OmniRelayError {
  return new OmniRelayError({
    status: "not-found",
    code: ErrorCodes.replicationHub.sourceNotFound,
    message: `The hub has no log for ${sourceKey(id)}.`,
    metadata: { "replication.source": sourceKey(id) },
  });
}
