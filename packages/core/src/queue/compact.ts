import type { ItemRecord } from "./records.js";
import type { QueueState } from "./state.js";

/** Size of the slabs compacted bodies are copied into (as Node's own allocation pool). */
const SLAB_BYTES = 8 * 1024;

/**
 * After a rebuild, the bodies of the items still held are views into the buffers the log's rows were decoded into,
 * shared with the bodies of every item that has since completed. When those buffers hold more than twice the live
 * bytes, the live bodies are copied into fresh, densely filled slabs, so what the queue keeps alive stays
 * proportional to what it holds (a body the queue takes in live is copied at the edge; see `validatePayload`).
 */
export function compactBodies(state: QueueState): void {
  const records: ItemRecord[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let live = 0;
  let pinned = 0;
  const visit = (record: ItemRecord) => {
    const body = record.payload.body;
    if (body === undefined || body.byteLength === 0) return;
    records.push(record);
    live += body.byteLength;
    if (!buffers.has(body.buffer)) {
      buffers.add(body.buffer);
      pinned += body.buffer.byteLength;
    }
  };
  for (const record of state.items.values()) visit(record);
  for (const record of state.dead.values()) visit(record);
  if (pinned <= 2 * live + SLAB_BYTES) return;
  let slab = new Uint8Array(0);
  let offset = 0;
  for (const record of records) {
    const body = record.payload.body!;
    let copy: Uint8Array;
    if (body.byteLength > SLAB_BYTES / 2) copy = new Uint8Array(body);
    else {
      if (offset + body.byteLength > slab.byteLength) {
        slab = new Uint8Array(SLAB_BYTES);
        offset = 0;
      }
      copy = slab.subarray(offset, offset + body.byteLength);
      copy.set(body);
      offset += body.byteLength;
    }
    // The payload object is frozen and shared by the item's events; the record gets a copy that points at the slab.
    (record as { payload: ItemRecord["payload"] }).payload = Object.freeze({ ...record.payload, body: copy });
  }
}
