import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import type { ObjectListEntry } from "@omnirelay/core/replication";

/** The error of a listing that breaks the store contract (keys in strictly ascending order). Internal. */
export function listingError(prefix: string, detail: string): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.objectStorage.storeFailed,
    message: `Object store list of ${prefix} failed: ${detail} A listing must return each key once, in ascending order.`,
    metadata: { operation: "list", key: prefix },
  });
}

/**
 * Passes a store's listing on, refusing it at the first key that is not strictly greater than the one before. A
 * store, proxy or bucket that repeats a page (a looping continuation token) or reorders keys would otherwise make a
 * resume list forever and a reader re-read segments without end. Keys up to `startAfter` are dropped, as the
 * contract says a store never returns them. Internal.
 * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed` (metadata `operation: 'list'`, `key`).
 */
export async function* ascendingListing(
  listing: AsyncIterable<ObjectListEntry>,
  prefix: string,
  startAfter?: string,
): AsyncGenerator<ObjectListEntry> {
  let previous: string | undefined;
  for await (const entry of listing) {
    if (previous !== undefined && !keyAfter(entry.key, previous)) {
      const detail = `key ${JSON.stringify(entry.key)} came after ${JSON.stringify(previous)}.`;
      throw listingError(prefix, detail);
    }
    previous = entry.key;
    if (startAfter === undefined || keyAfter(entry.key, startAfter)) yield entry;
  }
}

/**
 * Whether `key` sorts after `other` in either order a store may list in (see core's object-store conformance): UTF-16
 * code units (JavaScript's `>`, the filesystem store's) or UTF-8 bytes, which is code point order (S3, GCS, Azure).
 * They differ only where a character above U+FFFF (a surrogate pair, D800–DFFF) meets one in U+E000–U+FFFF; checking
 * one order alone would have refused a bucket of the other holding both. Internal.
 */
export function keyAfter(key: string, other: string): boolean {
  if (key > other) return true;
  const n = Math.min(key.length, other.length);
  let i = 0;
  while (i < n && key.charCodeAt(i) === other.charCodeAt(i)) i++;
  if (i === n) return key.length > other.length;
  return codePointRank(key.charCodeAt(i)) > codePointRank(other.charCodeAt(i));
}

/** A UTF-16 code unit's place in code point order: surrogates (D800–DFFF) above every other BMP unit. */
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

/**
 * Remembers the continuation tokens of one listing and refuses a token it has already been given: following it
 * would request the same pages forever (empty ones included, which the key order check cannot see). Internal.
 */
export class PageTokens {
  private readonly seen = new Set<string>();

  constructor(private readonly prefix: string) {}

  /**
   * Returns `token` after checking it is new.
   * @throws OmniRelayError unavailable `resourcelease.objectstorage.store_failed`.
   */
  next<T extends string | undefined>(token: T): T {
    if (token === undefined) return token;
    if (this.seen.has(token)) {
      throw listingError(this.prefix, `the store returned continuation token ${JSON.stringify(token)} twice.`);
    }
    this.seen.add(token);
    return token;
  }
}
