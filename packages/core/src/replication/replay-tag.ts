import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";

/**
 * Metadata key of the replay tag: `"true"` on an event a node delivers to a downstream sink or observer again while it
 * replays its log after a restart (the event was committed before the node started), `"false"` on an event committed
 * while the node runs. The tag travels on delivered copies only; the log stores every event without it, so a rebuild
 * reads exactly what a live queue wrote.
 */
export const LEASE_REPLAY_METADATA = "lease.replay";

/**
 * A copy of `event` tagged `lease.replay=true` (`replay`) or `false`, for a sink or observer. The event itself is
 * not changed (it may be the one the log stores).
 */
export function tagReplay(event: ResourceLeaseReplicationEvent, replay: boolean): ResourceLeaseReplicationEvent {
  return { ...event, metadata: { ...event.metadata, [LEASE_REPLAY_METADATA]: replay ? "true" : "false" } };
}

/**
 * `true` or `false` for an event carrying the replay tag, `undefined` for one without it (an event read straight
 * from a log, or from a producer that does not tag).
 */
export function isReplayEvent(event: ResourceLeaseReplicationEvent): boolean | undefined {
  const tag = event.metadata?.[LEASE_REPLAY_METADATA];
  return tag === "true" ? true : tag === "false" ? false : undefined;
}

/** `event` without its replay tag (the same object when it has none): what the log stores. */
export function withoutReplayTag(event: ResourceLeaseReplicationEvent): ResourceLeaseReplicationEvent {
  if (event.metadata?.[LEASE_REPLAY_METADATA] === undefined) return event;
  const { [LEASE_REPLAY_METADATA]: _tag, ...metadata } = event.metadata;
  return { ...event, metadata };
}
