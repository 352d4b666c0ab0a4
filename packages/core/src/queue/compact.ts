import { heldBytes, SLAB_BYTES, slabCopy } from "../util/slab.js";
import type { ItemRecord } from "./records.js";
import type { QueueState } from "./state.js";

/**
 * Copies the bodies of the items still held into fresh slabs when the buffers they lie in hold more than twice their
 * bytes: after a rebuild (the bodies are views into the buffers the log's rows were decoded into, shared with every
 * item that has since completed) and, amortised, while the queue runs (bodies taken in share slabs, see
 * util/slab.ts, and a slab stays alive while any body in it does). What the queue keeps alive stays proportional to
 * what it holds. O(n) in the items held; returns whether it copied.
 */
export function compactBodies(state: QueueState): boolean {
  // First only measure (most passes find nothing to do), then copy what is worth it.
  const buffers = new Set<ArrayBufferLike>();
  let live = 0;
  let pinned = 0;
  const visit = (record: ItemRecord) => {
    const buffer = record.bodyBuffer;
    if (buffer === undefined || record.bodyLength === 0) return;
    live += record.bodyLength;
    if (!buffers.has(buffer)) {
      buffers.add(buffer);
      pinned += buffer.byteLength;
    }
  };
  for (const record of state.items.values()) visit(record);
  for (const record of state.dead.values()) visit(record);
  if (pinned <= 2 * live + 2 * SLAB_BYTES) return false;
  for (const record of state.items.values()) copyBody(record);
  for (const record of state.dead.values()) copyBody(record);
  return true;
}

function copyBody(record: ItemRecord): void {
  const buffer = record.bodyBuffer;
  if (buffer === undefined || record.bodyLength === 0) return;
  const body = new Uint8Array(buffer, record.bodyOffset, record.bodyLength);
  // A large body that owns its buffer pins nothing else: it stays (heldBytes copies one that does not).
  const copy = body.byteLength > SLAB_BYTES / 4 ? heldBytes(body) : slabCopy(body);
  if (copy === body) return;
  // The record now points at the copy; a payload already handed out (an event, a lease) keeps its own view.
  record.bodyBuffer = copy.buffer;
  record.bodyOffset = copy.byteOffset;
}

/**
 * When to compact a running queue's bodies: after it has taken in or finished at least as many items as it holds (and
 * at least `minimum`), so the O(n) pass costs O(1) per item taken in or finished, and slabs pin at most about twice
 * what the queue holds plus what changed since the last pass. Finished items count too: a queue that only drains
 * (after a restart, say) would otherwise keep every buffer its stragglers' bodies lie in alive until new work came in.
 */
export class CompactionSchedule {
  private changed = 0;

  constructor(private readonly minimum = 4096) {}

  /** Counts `n` items taken in or finished; true when a pass is due (the count restarts). */
  count(n: number, held: number): boolean {
    this.changed += n;
    if (this.changed < Math.max(this.minimum, held)) return false;
    this.changed = 0;
    return true;
  }
}
