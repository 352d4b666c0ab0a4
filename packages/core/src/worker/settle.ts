import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Clock } from "../util/clock.js";
import { expiredLocallyError, fencedError, isLeaseLost } from "./errors.js";
import type { LeaseRun } from "./lease-run.js";
import { defaultFailDecision, type ResourceLeaseWorkerFailDecision } from "./options.js";
import type { WorkerReporter } from "./reporter.js";

// How a worker settles an item once its handler is done: what a failure asks the queue for, and sending the complete
// or fail while the lease lasts. Internal to the worker.

/** What {@link deliver} got: the answer, or nothing when the lease was lost first. */
export type Delivery<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

/** The fail request sent for a failed handler. */
export interface FailRequest {
  readonly requeue: boolean;
  readonly reason: string;
  readonly errorCode?: string;
  readonly delayMs?: number;
}

/** The item a run is about, as events name it. */
export function itemOf(run: LeaseRun): { sequenceId: number; attempt: number } {
  return { sequenceId: run.token.sequenceId, attempt: run.token.attempt };
}

/**
 * The fail request for a handler that threw `error`: `failOnError`'s decision, falling back to the default decision
 * (and reporting why) when it throws or returns a delay the server would refuse.
 */
export function failRequest(
  run: LeaseRun,
  error: unknown,
  context: {
    readonly failOnError: (error: unknown, item: ResourceLeaseGrant) => ResourceLeaseWorkerFailDecision;
    readonly reporter: WorkerReporter;
  },
): FailRequest {
  const { reporter } = context;
  let decision: ResourceLeaseWorkerFailDecision;
  try {
    const d = context.failOnError(error, run.grant);
    decision = typeof d === "object" && d !== null ? d : defaultFailDecision(error);
  } catch (thrown) {
    reporter.error({ type: "error", operation: "failOnError", error: OmniRelayError.from(thrown), ...itemOf(run) });
    decision = defaultFailDecision(error);
  }
  const fallback = defaultFailDecision(error);
  const delayMs = decision.delayMs;
  if (delayMs !== undefined && !(Number.isSafeInteger(delayMs) && delayMs >= 0)) {
    // A bad delay would make the server refuse the fail (and the item wait for its lease to expire): drop it.
    const message = `failOnError returned delayMs ${delayMs}; using the queue's backoff.`;
    const bad = OmniRelayError.invalidOption("delayMs", message);
    reporter.error({ type: "error", operation: "failOnError", error: bad, ...itemOf(run) });
    decision = { ...decision, delayMs: undefined };
  }
  return {
    requeue: decision.requeue ?? true,
    reason: decision.reason ?? fallback.reason ?? "Handler failed.",
    ...((decision.errorCode ?? fallback.errorCode) ? { errorCode: decision.errorCode ?? fallback.errorCode } : {}),
    ...(decision.delayMs !== undefined ? { delayMs: decision.delayMs } : {}),
  };
}

/**
 * Sends a complete or fail, retrying transient errors while the lease lasts. A lost lease (rejected, or out of time)
 * is reported as lost and never thrown. `context.firstError`: the first attempt was already made (on the fast path)
 * and failed with it; delivery goes on from there as if this had made it.
 */
export async function deliver<T>(
  run: LeaseRun,
  send: () => Promise<T>,
  context: {
    readonly operation: "complete" | "fail";
    readonly clock: Clock;
    readonly reporter: WorkerReporter;
    readonly firstError?: { readonly thrown: unknown } | undefined;
  },
): Promise<Delivery<T>> {
  const { operation, clock, reporter } = context;
  let backoffMs = 50;
  let failed = context.firstError;
  for (;;) {
    if (failed === undefined) {
      try {
        return { ok: true, value: await send() };
      } catch (thrown) {
        failed = { thrown };
      }
    }
    const error = OmniRelayError.from(failed.thrown);
    failed = undefined;
    if (isLeaseLost(error)) {
      reporter.lost(itemOf(run), fencedError(run.token, error));
      return { ok: false };
    }
    const retryInMs = backoffMs < run.expiresAt - clock.now() ? backoffMs : undefined;
    reporter.error({
      type: "error",
      operation,
      error,
      ...itemOf(run),
      ...(retryInMs !== undefined ? { retryInMs } : {}),
    });
    if (retryInMs === undefined) {
      reporter.lost(itemOf(run), expiredLocallyError(run.token, error));
      return { ok: false };
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, retryInMs));
    backoffMs = Math.min(backoffMs * 2, 1_000);
  }
}
