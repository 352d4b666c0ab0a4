import { describe, expect, it } from "vitest";
import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { Payload } from "../wire/messages.js";
import { newItemRecord, payloadOf, toPendingItem } from "./records.js";

// A record holds its body as a place in a buffer and builds the payload again when asked. Every field must come back:
// the list buildPayload copies is written out by hand, so this checks it against the wire message's fields.
const full: Required<ResourceLeaseItemPayload> = {
  resourceType: "job",
  resourceId: "r-1",
  partitionKey: "p",
  payloadEncoding: "json",
  body: new Uint8Array([1, 2, 3]),
  attributes: { tenant: "a" },
  requestId: "req-1",
  notBefore: 1_800_000_000_000,
  delayMs: 250,
  priority: -3,
};

const pending = (payload: ResourceLeaseItemPayload) => ({ payload, sequenceId: 7, attempt: 1, enqueuedAt: 1 });

describe("an item record's payload", () => {
  it("comes back with every field of the wire message, body included", () => {
    // A named message's schema is a reference; its fields are in the definition it adds.
    const definitions: Record<string, { properties?: Record<string, unknown> }> = {};
    Payload.schema(definitions as never);
    const fields = Object.keys(definitions.itemPayload?.properties ?? {});
    expect(fields.length).toBeGreaterThan(4);
    expect(Object.keys(full).sort()).toEqual([...fields].sort());
    const record = newItemRecord(pending(full));
    expect(payloadOf(record)).toEqual(full);
    expect(toPendingItem(record).payload).toEqual(full);
  });

  it("keeps no view of the body, only its place: the bytes it lies in, not a copy", () => {
    const slab = new Uint8Array(64).fill(9);
    const body = slab.subarray(10, 20);
    const record = newItemRecord(pending({ ...full, body }));
    expect(Object.values(record).some((v) => v instanceof Uint8Array)).toBe(false);
    expect(Object.values(record.meta).some((v) => v instanceof Uint8Array)).toBe(false);
    const again = payloadOf(record).body as Uint8Array;
    expect(again.buffer).toBe(slab.buffer);
    expect([again.byteOffset, again.byteLength]).toEqual([10, 10]);
    // Each call is a payload of its own, so a caller that changes one changes nothing the queue holds.
    expect(payloadOf(record)).not.toBe(payloadOf(record));
  });

  it("tells an empty body from none, and an empty one pins no caller's buffer", () => {
    const big = new ArrayBuffer(1 << 20);
    const empty = newItemRecord(pending({ ...full, body: new Uint8Array(big, 5, 0) }));
    expect(payloadOf(empty).body).toEqual(new Uint8Array(0));
    expect(empty.bodyBuffer).not.toBe(big);
    const { body: _none, ...withoutBody } = full;
    const none = newItemRecord(pending(withoutBody));
    expect("body" in payloadOf(none)).toBe(false);
    expect(payloadOf(none)).toEqual(withoutBody);
  });
});
