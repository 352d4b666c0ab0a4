import type { ResourceLeasePendingItem } from "../contracts/payload.js";
import { decodePendingItemJson, encodePendingItemJson, JsonDecodeContext } from "./json-parts.js";
import type { ResourceLeasePendingItemJson } from "./json-types.js";

/** Options of {@link decodePendingItem}. */
export interface DecodePendingItemOptions {
  /** Field path used in error metadata, e.g. `items[3]`. @defaultValue `"item"` */
  readonly field?: string;
  /**
   * `enqueuedAt` (ms since the epoch) to use when the item has none, e.g. the receiving node's clock for a restore
   * request. When not given, a missing `enqueuedAt` is an error.
   */
  readonly defaultEnqueuedAt?: number;
}

/**
 * Encodes a pending item (drain output, restore input) as its wire JSON: camelCase, times ISO-8601, body base64,
 * absent fields omitted.
 */
export function encodePendingItem(item: ResourceLeasePendingItem): ResourceLeasePendingItemJson {
  return encodePendingItemJson(item);
}

/**
 * Decodes a pending item from wire JSON (already parsed). Property names of the item, its payload, error and token
 * match case-insensitively; a missing `attempt` reads as 1; integers may be decimal strings; times are ISO-8601
 * (ms numbers are accepted too).
 *
 * @throws OmniRelayError invalid-argument with metadata `field`: `resourcelease.restore.pending_item_required` (no
 *   item), `resourcelease.payload.required` / `.resource_type_required` / `.resource_id_required` /
 *   `.partition_key_required` / `.encoding_required` / `.invalid` (payload), `resourcelease.lease.token_required`
 *   (`lastOwnershipToken`), `resourcelease.argument.invalid` (anything else).
 */
export function decodePendingItem(json: unknown, options: DecodePendingItemOptions = {}): ResourceLeasePendingItem {
  const ctx = new JsonDecodeContext("item");
  return decodePendingItemJson(ctx, json, options.field ?? "item", options);
}
