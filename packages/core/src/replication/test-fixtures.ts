import type { ResourceLeaseEventType, ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeaseItemPayload, ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";

// Event fixtures shared by the tests of this folder and of deterministic/. Not exported from the barrel.

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0, 123);

/** A payload with a body, attributes and a request id. */
export function samplePayload(id = "r-1"): ResourceLeaseItemPayload {
  return {
    resourceType: "table",
    resourceId: id,
    partitionKey: "p-1",
    payloadEncoding: "json",
    body: new Uint8Array([0, 1, 2, 250, 255, 123]),
    attributes: { tenant: "acme", "x.y": "z" },
    requestId: `req-${id}`,
  };
}

/** A pending item with every optional field set. */
export function sampleItem(sequenceId: number): ResourceLeasePendingItem {
  return {
    payload: samplePayload(`r-${sequenceId}`),
    sequenceId,
    attempt: 2,
    enqueuedAt: t0 - 5_000,
    lastError: { message: "boom", code: "worker.crash" },
    lastOwnershipToken: { sequenceId, attempt: 1, leaseId: "0b2c3d4e-aaaa-bbbb-cccc-1234567890ab", fencingToken: 7 },
    availableAt: t0 + 1_000,
  };
}

/** A minimal event of `eventType` with sequence number `seq`. */
export function makeEvent(
  seq: number,
  eventType: ResourceLeaseEventType = "Enqueue",
  extra: Partial<ResourceLeaseReplicationEvent> = {},
): ResourceLeaseReplicationEvent {
  return { sequenceNumber: seq, eventType, timestamp: t0 + seq, metadata: { "queue.pending": String(seq) }, ...extra };
}

/** One realistic event of every type, numbered 1..11. */
export function eventOfEveryType(): ResourceLeaseReplicationEvent[] {
  const ownership = { sequenceId: 4, attempt: 1, leaseId: "5f0e9a4c-1111-2222-3333-444455556666", fencingToken: 12 };
  const meta = { "queue.pending": "1", "queue.active": "0" };
  return [
    makeEvent(1, "Enqueue", { item: sampleItem(4), peerId: "producer-a", metadata: meta }),
    makeEvent(2, "LeaseGranted", {
      ownership,
      peerId: "worker-a",
      principal: "CN=worker-a",
      leaseExpiresAt: t0 + 30_000,
      payload: samplePayload("r-4"),
      error: { message: "previous failure" },
      metadata: meta,
    }),
    makeEvent(3, "Heartbeat", { ownership, peerId: "worker-a", leaseExpiresAt: t0 + 60_000, metadata: meta }),
    makeEvent(4, "Completed", { ownership, peerId: "worker-a", payload: samplePayload("r-4"), metadata: meta }),
    makeEvent(5, "Failed", {
      ownership,
      peerId: "worker-a",
      payload: samplePayload("r-4"),
      error: { message: "bad input", code: "app.invalid" },
      metadata: { ...meta, "failure.requeued": "true" },
    }),
    makeEvent(6, "DrainSnapshot", { items: [sampleItem(5), sampleItem(6)], metadata: { ...meta, "drain.count": "2" } }),
    makeEvent(7, "RestoreSnapshot", { items: [sampleItem(5)], metadata: { ...meta, "restore.count": "1" } }),
    makeEvent(8, "LeaseExpired", { ownership, peerId: "worker-a", payload: samplePayload("r-4"), metadata: meta }),
    makeEvent(9, "Requeued", { item: sampleItem(4), metadata: meta }),
    makeEvent(10, "DeadLettered", {
      item: sampleItem(4),
      error: { message: "too many attempts" },
      metadata: { ...meta, "deadletter.reason": "max_attempts" },
    }),
    makeEvent(11, "Redriven", { item: { ...sampleItem(4), attempt: 1 }, metadata: meta }),
    makeEvent(12, "DeadLetterPurged", { item: sampleItem(5), metadata: { ...meta, "deadletter.purge_reason": "age" } }),
    makeEvent(13, "Cancelled", { item: sampleItem(6), metadata: { ...meta, "cancel.state": "pending" } }),
    makeEvent(14, "ScheduleUpserted", {
      payload: samplePayload("scheduled"),
      metadata: {
        ...meta,
        "schedule.id": "every-5",
        "schedule.cron": "*/5 * * * *",
        "schedule.timezone": "UTC",
        "schedule.backfill": "skip",
        "schedule.backfill_window_ms": "86400000",
      },
    }),
    makeEvent(15, "ScheduleRemoved", { metadata: { ...meta, "schedule.id": "every-5" } }),
    makeEvent(16, "LeaseRefused", {
      ownership,
      peerId: "worker-stale",
      metadata: { ...meta, "refused.verb": "heartbeat", "refused.code": ErrorCodes.resourceLease.leaseFenced },
    }),
  ];
}

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Creates a {@link Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run (one macrotask turn). */
export async function flush(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}
