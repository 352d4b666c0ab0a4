import { afterEach } from "vitest";
import { isOmniRelayError, type OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseQueueOptions } from "../index.js";
import type { ResourceLeaseWorkerEvent } from "./events.js";
import type { ResourceLeaseWorkerOptions } from "./options.js";
import { startStack } from "./test-helpers.js";
import { ResourceLeaseWorker } from "./worker.js";

// Shared by the worker-over-HTTP tests. Real parts: a ResourceLeaseQueue behind a dispatcher served over HTTP on
// 127.0.0.1, workers on HttpOutbound clients, short leases and real time.

/**
 * Registers an afterEach in the calling test file that closes every stack and worker made through the returned
 * `setup` and `worker` (workers first, in reverse order).
 */
export function httpHarness() {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(queueOptions: ResourceLeaseQueueOptions = { leaseDurationMs: 300 }) {
    const stack = await startStack(queueOptions);
    cleanups.push(() => stack.close());
    return stack;
  }

  /** A worker closed after the test; `release` runs first (to let a stubborn handler end). */
  function worker(options: ResourceLeaseWorkerOptions, release?: () => void): ResourceLeaseWorker {
    const created = new ResourceLeaseWorker(options);
    cleanups.push(async () => {
      release?.();
      await created.close({ graceMs: 200 });
    });
    return created;
  }

  return { setup, worker };
}

/** A type guard for worker events of `type`. */
export const isType =
  <K extends ResourceLeaseWorkerEvent["type"]>(type: K) =>
  (e: ResourceLeaseWorkerEvent): e is Extract<ResourceLeaseWorkerEvent, { type: K }> =>
    e.type === type;

/** Resolves once `n` events of `type` were seen. */
export async function count(
  events: AsyncIterable<ResourceLeaseWorkerEvent>,
  type: ResourceLeaseWorkerEvent["type"],
  n: number,
) {
  let seen = 0;
  for await (const e of events) if (e.type === type && ++seen === n) return;
  throw new Error(`only ${seen} ${type} events`);
}

/** The OmniRelayError `promise` rejects with. */
export async function rejection(promise: Promise<unknown>): Promise<OmniRelayError> {
  try {
    await promise;
  } catch (error) {
    if (isOmniRelayError(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}
