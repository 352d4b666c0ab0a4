// Helpers of ResourceLeaseClient (client.ts): the scheduling fields of enqueue options, and the checks of answers that
// must hold whatever the server sends.
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseClientEnqueueOptions } from "./client.js";

/** The payload with the enqueue options' scheduling fields, where the payload gives none of its own. */
export function scheduled(
  payload: ResourceLeaseItemPayload,
  options?: ResourceLeaseClientEnqueueOptions,
): ResourceLeaseItemPayload {
  if (!options) return payload;
  const { notBefore, delayMs, priority } = options;
  if (notBefore === undefined && delayMs === undefined && priority === undefined) return payload;
  const own = payload.notBefore !== undefined || payload.delayMs !== undefined;
  return {
    ...payload,
    ...(!own && notBefore !== undefined
      ? { notBefore: notBefore instanceof Date ? notBefore.getTime() : notBefore }
      : {}),
    ...(!own && delayMs !== undefined ? { delayMs } : {}),
    ...(payload.priority === undefined && priority !== undefined ? { priority } : {}),
  };
}

/** A `omnirelay.response.invalid` error: the server's answer breaks the procedure's contract. */
export function invalidAnswer(field: string, message: string): OmniRelayError {
  return new OmniRelayError({
    status: "internal",
    code: ErrorCodes.rpc.responseInvalid,
    message: `The remote's answer is not a valid one: ${message}`,
    metadata: { field },
  });
}

/**
 * Checks that a `schedule.list` page moves forward from `after`: its ids in order and past `after`, and `next`, when
 * present, no earlier than the page's last id (so past `after`), on a page that is not empty. A page that does not
 * could make the listing go round forever or list a schedule twice.
 */
export function checkSchedulePage(page: { schedules: readonly { id: string }[]; next?: string }, after?: string): void {
  let last = after;
  for (const { id } of page.schedules) {
    if (last !== undefined && !(id > last)) {
      throw invalidAnswer("schedules", `schedule.list answered '${id}' after '${last}': ids must sort in order.`);
    }
    last = id;
  }
  if (page.next === undefined) return;
  if (page.schedules.length === 0 || last === undefined || page.next < last) {
    throw invalidAnswer(
      "next",
      `schedule.list answered next '${page.next}', which does not move past '${last ?? ""}'.`,
    );
  }
}

/** The sequence ids of an enqueue of `count` items: `count` numbers, or the answer is not a valid one. */
export function checkIdCount(ids: readonly unknown[], count: number): void {
  if (ids.length !== count || ids.some((id) => typeof id !== "number")) {
    throw invalidAnswer("sequenceIds", `${count} items were enqueued but ${ids.length} sequence ids came back.`);
  }
}

/** The results of a batched complete of `count` leases: one each, or the answer is not a valid one. */
export function checkResultCount<T>(results: readonly T[], count: number): readonly T[] {
  if (results.length !== count) {
    throw invalidAnswer("results", `${count} leases were completed but ${results.length} results came back.`);
  }
  return results;
}

/** Most items `ResourceLeaseClient.drain` gathers unless told otherwise. */
export const DRAIN_MAX_ITEMS = 1_000_000;

/** The error of a call whose shared deadline passed between its pages. */
export function pastDeadline(): OmniRelayError {
  return new OmniRelayError({
    status: "deadline-exceeded",
    code: ErrorCodes.rpc.deadlineExceeded,
    message: "The call's deadline passed before its next page was asked for.",
  });
}

/** An enqueue of items that all carry a `requestId` is idempotent: a second copy returns the first's ids. */
export function hasRequestId(payload: ResourceLeaseItemPayload): boolean {
  return typeof payload.requestId === "string" && payload.requestId.trim() !== "";
}
