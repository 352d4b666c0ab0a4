import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { sampleItem, samplePayload } from "../replication/test-fixtures.js";
import { getPropertyIgnoreCase } from "./case-insensitive.js";
import { decodePendingItem, encodePendingItem } from "./index.js";
import { RestoreItemMessage } from "./messages.js";
import { requestSite } from "./site.js";

function failure(fn: () => unknown): { code: string; field: string | undefined } {
  try {
    fn();
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    expect(error.status).toBe("invalid-argument");
    return { code: error.code, field: error.metadata.field };
  }
  throw new Error("expected decode to throw");
}

describe("encodePendingItem / decodePendingItem", () => {
  it("round-trips a full item and a minimal one", () => {
    const full = sampleItem(9);
    expect(decodePendingItem(JSON.parse(JSON.stringify(encodePendingItem(full))))).toEqual(full);
    const minimal = {
      payload: { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "raw" },
      sequenceId: 1,
      attempt: 1,
      enqueuedAt: 0,
    };
    const json = encodePendingItem(minimal);
    expect(json).toEqual({
      payload: { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "raw" },
      sequenceId: 1,
      attempt: 1,
      enqueuedAt: "1970-01-01T00:00:00.000Z",
    });
    expect(decodePendingItem(json)).toEqual(minimal);
  });

  it("matches property names case-insensitively and reads numbers from strings", () => {
    const item = decodePendingItem({
      PAYLOAD: {
        ResourceType: "table",
        resourceid: "r-1",
        PartitionKey: "p-1",
        PAYLOADENCODING: "json",
        Attributes: { Tenant: "acme" },
      },
      SequenceId: "17",
      Attempt: 3,
      EnqueuedAt: "2025-11-20T10:00:00.1234567+01:00",
      LastError: { Message: "boom", Code: "x" },
    });
    expect(item).toEqual({
      payload: {
        resourceType: "table",
        resourceId: "r-1",
        partitionKey: "p-1",
        payloadEncoding: "json",
        attributes: { Tenant: "acme" },
      },
      sequenceId: 17,
      attempt: 3,
      enqueuedAt: Date.UTC(2025, 10, 20, 9, 0, 0, 123),
      lastError: { message: "boom", code: "x" },
    });
  });

  it("requires attempt and enqueuedAt; a restore request may leave them out for the queue to fill", () => {
    const payload = { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "raw" };
    expect(failure(() => decodePendingItem({ payload, sequenceId: 4, enqueuedAt: 0 }))).toEqual({
      code: "resourcelease.argument.invalid",
      field: "item.attempt",
    });
    expect(failure(() => decodePendingItem({ payload, sequenceId: 4, attempt: 1 }))).toEqual({
      code: "resourcelease.argument.invalid",
      field: "item.enqueuedAt",
    });
    expect(RestoreItemMessage.read({ payload, sequenceId: 4 }, requestSite("items[0]"))).toEqual({
      payload,
      sequenceId: 4,
    });
  });

  it("reports the queue's validation codes with the field path", () => {
    const payload = encodePendingItem(sampleItem(1)).payload as Record<string, unknown>;
    const base = { payload, sequenceId: 1, attempt: 1, enqueuedAt: "2026-01-01T00:00:00Z" };
    const field = { field: "items[3]" };
    expect(failure(() => decodePendingItem(null, field))).toEqual({
      code: "resourcelease.restore.pending_item_required",
      field: "items[3]",
    });
    expect(failure(() => decodePendingItem({ ...base, payload: undefined }, field))).toEqual({
      code: "resourcelease.payload.required",
      field: "items[3].payload",
    });
    expect(failure(() => decodePendingItem({ ...base, payload: { ...payload, resourceType: "" } }, field))).toEqual({
      code: "resourcelease.payload.resource_type_required",
      field: "items[3].payload.resourceType",
    });
    expect(failure(() => decodePendingItem({ ...base, payload: { ...payload, partitionKey: 5 } }, field))).toEqual({
      code: "resourcelease.payload.partition_key_required",
      field: "items[3].payload.partitionKey",
    });
    expect(failure(() => decodePendingItem({ ...base, payload: { ...payload, body: "@@@" } }, field))).toEqual({
      code: "resourcelease.payload.invalid",
      field: "items[3].payload.body",
    });
    expect(failure(() => decodePendingItem({ ...base, lastOwnershipToken: { sequenceId: 1 } }, field))).toEqual({
      code: "resourcelease.lease.token_required",
      field: "items[3].lastOwnershipToken.attempt",
    });
    expect(failure(() => decodePendingItem({ ...base, sequenceId: 0 }, field))).toEqual({
      code: "resourcelease.argument.invalid",
      field: "items[3].sequenceId",
    });
    expect(failure(() => decodePendingItem({ ...base, availableAt: "soon" }, field))).toEqual({
      code: "resourcelease.argument.invalid",
      field: "items[3].availableAt",
    });
  });

  it("returns body bytes as a plain Uint8Array copy", () => {
    const decoded = decodePendingItem(encodePendingItem({ ...sampleItem(2), payload: samplePayload() }));
    expect(decoded.payload.body).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(decoded.payload.body)).toBe(false);
    expect([...(decoded.payload.body ?? [])]).toEqual([0, 1, 2, 250, 255, 123]);
  });
});

describe("getPropertyIgnoreCase", () => {
  it("prefers an exact match, falls back to any case, and ignores inherited properties", () => {
    expect(getPropertyIgnoreCase({ SequenceId: 1, sequenceId: 2 }, "sequenceId")).toBe(2);
    expect(getPropertyIgnoreCase({ SEQUENCEID: 3 }, "sequenceId")).toBe(3);
    expect(getPropertyIgnoreCase({}, "toString")).toBeUndefined();
    expect(getPropertyIgnoreCase(JSON.parse('{"__proto__": {"x": 1}}'), "x")).toBeUndefined();
    expect(getPropertyIgnoreCase({ other: 1 }, "missing")).toBeUndefined();
  });
});
