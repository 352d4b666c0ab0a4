import type { ResourceLeaseDeadLetterItem, ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { ResourceLeaseLimits as Limits, payloadBytes } from "../wire/limits.js";
import { type ItemRecord, toPendingItem } from "./records.js";
import { toDeadLetterItem } from "./snapshot.js";
import type { QueueState } from "./state.js";

// Drain, restore and the dead-letter listing move many items at once. Each is bounded per event and per page, so no
// single event outgrows a log row or a sink's message and no single answer outgrows what the other side accepts.

/** Most items in one DrainSnapshot or RestoreSnapshot event. */
const EVENT_MAX_ITEMS = 1000;
/** Most payload bytes in one DrainSnapshot or RestoreSnapshot event. */
const EVENT_MAX_BYTES = 4 * 1024 * 1024;

/** A page limit: at most `maxItems` items and (after the first item) `maxBytes` payload bytes. */
export interface PageLimit {
  readonly maxItems: number;
  readonly maxBytes: number;
}

/** Splits items into groups that each fit in one event. */
export function eventChunks<T extends ResourceLeasePendingItem>(items: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = payloadBytes(item.payload);
    if (chunk.length > 0 && (chunk.length >= EVENT_MAX_ITEMS || bytes + size > EVENT_MAX_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Whether `next` fits on a page that already holds `count` items of `bytes` payload bytes. */
function fits(page: { count: number; bytes: number }, next: ItemRecord, limit: PageLimit): boolean {
  return page.count === 0 || (page.count < limit.maxItems && page.bytes + next.bytes <= limit.maxBytes);
}

/** The queued items a drain takes next: pending in arrival order, then delayed ones by due time, within `limit`. */
export function drainPage(state: QueueState, limit: PageLimit): ResourceLeasePendingItem[] {
  const out: ResourceLeasePendingItem[] = [];
  let bytes = 0;
  for (const item of state.pending.values()) {
    if (!fits({ count: out.length, bytes }, item, limit)) return out;
    out.push(toPendingItem(item));
    bytes += item.bytes;
  }
  const delayed = state.delayedItems();
  delayed.sort((a, b) => (a.availableAt ?? 0) - (b.availableAt ?? 0) || a.sequenceId - b.sequenceId);
  for (const item of delayed) {
    if (!fits({ count: out.length, bytes }, item, limit)) return out;
    out.push(toPendingItem(item));
    bytes += item.bytes;
  }
  return out;
}

/** Dead letters oldest first, within `limit`. */
export function deadLetterPage(state: QueueState, limit: PageLimit): ResourceLeaseDeadLetterItem[] {
  const out: ResourceLeaseDeadLetterItem[] = [];
  let bytes = 0;
  for (const item of state.dead.values()) {
    if (!fits({ count: out.length, bytes }, item, limit)) break;
    out.push(toDeadLetterItem(item));
    bytes += item.bytes;
  }
  return out;
}

/**
 * Checks that restored items may keep their ids: an id is free when it is above every id the queue has seen, was
 * skipped over by an earlier restore (never used), or names one of the queue's own drained items coming back.
 * Anything else could collide with an item the queue holds or once held, so it is refused unless the caller asked
 * for fresh ids.
 * @throws OmniRelayError invalid-argument (an id twice in the request), already-exists
 * `resourcelease.restore.duplicate_item`.
 */
export function checkKeptIds(state: QueueState, items: readonly ResourceLeasePendingItem[]): void {
  const seen = new Set<number>();
  for (const [i, item] of items.entries()) {
    const id = item.sequenceId;
    if (seen.has(id)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: `sequenceId ${id} appears twice.`,
        metadata: {
          field: "items",
          sequenceId: String(id),
        },
      });
    }
    seen.add(id);
    if (id > state.lastSequenceId && id > Limits.maxSequenceId) {
      // Ids above it are the queue's own counter's (it goes on after the highest id it has seen): one brought in from
      // outside could take that counter past the safe-integer range. Its own drained items keep theirs (below).
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.resourceLease.argumentInvalid,
        message: `items: sequenceId ${id} is above ${Limits.maxSequenceId}, the highest id a restore may bring in (only this queue's own drained items may have higher ones); restore with renumber to give the items new ids.`,
        metadata: { field: `items[${i}].sequenceId`, sequenceId: String(id), limit: String(Limits.maxSequenceId) },
      });
    }
    if (id <= state.lastSequenceId && !state.reusableIds.has(id)) {
      const held = state.items.has(id) || state.dead.has(id);
      throw new OmniRelayError({
        status: "already-exists",
        code: ErrorCodes.resourceLease.restoreDuplicateItem,
        message: `${held ? "The queue already holds item" : "The queue already used the id of item"} ${id}; restore with renumber to give the items new ids.`,
        metadata: { sequenceId: String(id) },
      });
    }
  }
}
