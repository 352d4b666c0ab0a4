import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { ResourceLeaseQueueOptions } from "./options.js";
import { ResourceLeaseQueue } from "./queue.js";

/** A payload for tests. */
export function item(id: string | number, extra: Partial<ResourceLeaseItemPayload> = {}): ResourceLeaseItemPayload {
  return { resourceType: "table", resourceId: String(id), partitionKey: "p", payloadEncoding: "json", ...extra };
}

/** A queue on a fake clock that records every event it emits. */
export function fixture(options: ResourceLeaseQueueOptions = {}) {
  const clock = new FakeClock();
  const events: ResourceLeaseReplicationEvent[] = [];
  const queue = new ResourceLeaseQueue({
    clock,
    ...options,
    observers: [(e) => events.push(e), ...(options.observers ?? [])],
  });
  return { clock, events, queue, types: () => events.map((e) => e.eventType) };
}

/** Awaits a promise that must reject with an OmniRelayError and returns it. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<{ status: string; code: string; metadata: Record<string, string> }> {
  try {
    await promise;
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    return error;
  }
  throw new Error("expected the promise to reject");
}
