import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";

/** A minimal valid Enqueue event with the given sequence number. */
export function event(sequenceNumber: number, tag = "t"): ResourceLeaseReplicationEvent {
  return {
    sequenceNumber,
    eventType: "Enqueue",
    timestamp: 1_700_000_000_000 + sequenceNumber,
    peerId: tag,
    metadata: { "test.tag": tag },
  };
}

/** Events `from..to` inclusive. */
export function events(from: number, to: number, tag = "t"): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (let s = from; s <= to; s++) out.push(event(s, tag));
  return out;
}

/** Polls `predicate` every 10 ms until it holds or `timeoutMs` passes (for state only observable by polling). */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Replicator timeouts short enough for tests against a hub on loopback. */
export const fast = {
  connectTimeoutMs: 500,
  ackTimeoutMs: 500,
  reconnectInitialDelayMs: 20,
  reconnectMaxDelayMs: 100,
} as const;
