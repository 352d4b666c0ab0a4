// Small bodies a queue holds are copied into shared slabs instead of a buffer each. A buffer of its own costs an
// ArrayBuffer object, its backing store's bookkeeping and a malloc'd block per body (~300 bytes beside a 200-byte body
// in a heap profile); a slab spreads that over its bodies. A slab stays alive while any body in it does, so the queue
// compacts its bodies when slabs hold much more than the bodies still alive (see queue/compact.ts).

/** Size of each slab (bytes). */
export const SLAB_BYTES = 16 * 1024;
/** Bodies larger than this get a buffer of their own. */
const SMALL = SLAB_BYTES / 4;

const slabs = new WeakSet<ArrayBufferLike>();
let slab = new Uint8Array(0);
let offset = 0;

/** Whether `body` lies in one of the slabs. */
export function inSlab(body: Uint8Array): boolean {
  return slabs.has(body.buffer);
}

/** A copy of `body` in the current slab (a fresh slab when it is full); a large body gets a buffer of its own. */
export function slabCopy(body: Uint8Array): Uint8Array {
  const n = body.byteLength;
  if (n > SMALL) return new Uint8Array(body);
  if (offset + n > slab.byteLength) {
    slab = new Uint8Array(SLAB_BYTES);
    slabs.add(slab.buffer);
    offset = 0;
  }
  const copy = slab.subarray(offset, offset + n);
  copy.set(body);
  offset += n;
  return copy;
}

/**
 * The bytes a queue keeps of a body it takes in: a small body in a slab (kept if it already is in one, so a body read
 * twice is copied once); a large one as it is if it owns its whole (non-shared) buffer, else a copy of its own.
 */
export function heldBytes(body: Uint8Array): Uint8Array {
  if (body.byteLength === 0) return body;
  if (body.byteLength <= SMALL) return inSlab(body) ? body : slabCopy(body);
  const owns = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
  return owns && !(body.buffer instanceof SharedArrayBuffer) ? body : new Uint8Array(body);
}
