import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";

/** A LeaseGranted event with every field the envelope carries, numbered `n`. */
export function leaseEvent(
  n: number,
  extra: Partial<ResourceLeaseReplicationEvent> = {},
): ResourceLeaseReplicationEvent {
  return {
    sequenceNumber: n,
    eventType: "LeaseGranted",
    timestamp: 1_700_000_000_000 + n,
    ownership: { sequenceId: n, attempt: 1, leaseId: `lease-${n}`, fencingToken: n },
    peerId: "worker-a",
    principal: "spiffe://mesh/worker-a",
    payload: {
      resourceType: "invoice",
      resourceId: `inv-${n}`,
      partitionKey: "tenant-1",
      payloadEncoding: "json",
      body: new TextEncoder().encode(`{"n":${n}}`),
      attributes: { source: "test" },
    },
    leaseExpiresAt: 1_700_000_030_000 + n,
    metadata: { "queue.pending": "0", "queue.active": "1" },
    ...extra,
  };
}

/** Events `from..to` inclusive. */
export function range(from: number, to: number): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (let n = from; n <= to; n++) out.push(leaseEvent(n));
  return out;
}

/** Collects an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}
