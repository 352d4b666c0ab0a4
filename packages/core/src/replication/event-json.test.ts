import { describe, expect, it } from "vitest";
import { ResourceLeaseEventTypes } from "../contracts/events.js";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { decodeReplicationEvent, encodeReplicationEvent } from "./event-json.js";
import { eventOfEveryType, makeEvent, samplePayload } from "./test-fixtures.js";

function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    expect(error.status).toBe("invalid-argument");
    expect(error.code).toBe("resourcelease.replication.event_invalid");
    return error.metadata.field;
  }
  throw new Error("expected decode to throw");
}

describe("encodeReplicationEvent / decodeReplicationEvent", () => {
  it("round-trips every event type through JSON text", () => {
    const events = eventOfEveryType();
    expect(new Set(events.map((e) => e.eventType)).size).toBe(Object.keys(ResourceLeaseEventTypes).length);
    for (const event of events) {
      const text = JSON.stringify(encodeReplicationEvent(event));
      expect(decodeReplicationEvent(JSON.parse(text))).toEqual(event);
    }
  });

  it("writes camelCase, ISO timestamps, base64 bytes, the type name, and omits absent fields", () => {
    const [, granted] = eventOfEveryType();
    const json = encodeReplicationEvent(granted!);
    expect(json.timestamp).toBe("2026-01-01T12:00:00.125Z");
    expect(json.leaseExpiresAt).toBe("2026-01-01T12:00:30.123Z");
    expect(json.eventType).toBe("LeaseGranted");
    expect(json.payload?.body).toBe(Buffer.from([0, 1, 2, 250, 255, 123]).toString("base64"));
    expect(Object.keys(json)).toEqual([
      "sequenceNumber",
      "eventType",
      "timestamp",
      "ownership",
      "peerId",
      "principal",
      "payload",
      "error",
      "leaseExpiresAt",
      "metadata",
    ]);
    const minimal = encodeReplicationEvent(makeEvent(3, "Heartbeat"));
    expect(Object.keys(minimal)).toEqual(["sequenceNumber", "eventType", "timestamp", "metadata"]);
    expect(JSON.stringify(minimal)).not.toContain("null");
    const item = encodeReplicationEvent(eventOfEveryType()[0]!).item;
    expect(item?.enqueuedAt).toBe("2026-01-01T11:59:55.123Z");
    expect(item?.availableAt).toBe("2026-01-01T12:00:01.123Z");
  });

  it("encodes only the bytes of a Uint8Array view", () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const event = makeEvent(1, "Completed", { payload: { ...samplePayload(), body: backing.subarray(2, 5) } });
    expect(encodeReplicationEvent(event).payload?.body).toBe("AQID");
    expect(decodeReplicationEvent(encodeReplicationEvent(event)).payload?.body).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("accepts the type number, any property case, numeric strings and .NET timestamps", () => {
    const decoded = decodeReplicationEvent({
      SequenceNumber: "42",
      EVENTTYPE: 4,
      timeStamp: "2025-11-20T10:00:01.5000000+00:00",
      Ownership: { SequenceId: 7, Attempt: 1, LeaseId: "0b2c", FencingToken: 3 },
      peerid: "worker-a",
      Payload: { ResourceType: "t", ResourceId: "i", PartitionKey: "p", PayloadEncoding: "json", Body: "e30=" },
      Metadata: { "queue.pending": "0" },
    });
    expect(decoded).toEqual({
      sequenceNumber: 42,
      eventType: "Completed",
      timestamp: Date.UTC(2025, 10, 20, 10, 0, 1, 500),
      ownership: { sequenceId: 7, attempt: 1, leaseId: "0b2c", fencingToken: 3 },
      peerId: "worker-a",
      payload: {
        resourceType: "t",
        resourceId: "i",
        partitionKey: "p",
        payloadEncoding: "json",
        body: new Uint8Array([0x7b, 0x7d]),
      },
      metadata: { "queue.pending": "0" },
    });
    expect(decodeReplicationEvent({ sequenceNumber: 1, eventType: "deadLettered", timestamp: 0 }).eventType).toBe(
      "DeadLettered",
    );
    expect(decodeReplicationEvent({ sequenceNumber: 1, eventType: "Enqueue", timestamp: 0 }).metadata).toEqual({});
  });

  it("treats JSON nulls as absent", () => {
    const decoded = decodeReplicationEvent({
      sequenceNumber: 1,
      eventType: "Enqueue",
      timestamp: "2026-01-01T00:00:00Z",
      peerId: null,
      ownership: null,
      items: null,
      metadata: {},
    });
    expect(Object.keys(decoded).sort()).toEqual(["eventType", "metadata", "sequenceNumber", "timestamp"]);
  });

  it("names the bad field when the shape is wrong", () => {
    const good = encodeReplicationEvent(eventOfEveryType()[5]!) as unknown as Record<string, unknown>;
    expect(invalidField(() => decodeReplicationEvent("nope"))).toBe("event");
    expect(invalidField(() => decodeReplicationEvent(null))).toBe("event");
    expect(invalidField(() => decodeReplicationEvent({ ...good, sequenceNumber: undefined }))).toBe("sequenceNumber");
    expect(invalidField(() => decodeReplicationEvent({ ...good, sequenceNumber: 0 }))).toBe("sequenceNumber");
    expect(invalidField(() => decodeReplicationEvent({ ...good, sequenceNumber: 1.5 }))).toBe("sequenceNumber");
    expect(invalidField(() => decodeReplicationEvent({ ...good, eventType: "Exploded" }))).toBe("eventType");
    expect(invalidField(() => decodeReplicationEvent({ ...good, eventType: 99 }))).toBe("eventType");
    expect(invalidField(() => decodeReplicationEvent({ ...good, timestamp: "yesterday" }))).toBe("timestamp");
    expect(invalidField(() => decodeReplicationEvent({ ...good, timestamp: "2025-02-30T00:00:00Z" }))).toBe(
      "timestamp",
    );
    expect(invalidField(() => decodeReplicationEvent({ ...good, timestamp: "2025-01-01T00:00:00" }))).toBe("timestamp");
    expect(invalidField(() => decodeReplicationEvent({ ...good, metadata: { a: 1 } }))).toBe("metadata.a");
    expect(invalidField(() => decodeReplicationEvent({ ...good, items: {} }))).toBe("items");

    const items = structuredClone(good.items) as Array<Record<string, Record<string, unknown>>>;
    items[1]!.payload!.resourceId = " ";
    expect(invalidField(() => decodeReplicationEvent({ ...good, items }))).toBe("items[1].payload.resourceId");
    const badBody = structuredClone(good.items) as Array<Record<string, Record<string, unknown>>>;
    badBody[0]!.payload!.body = "not base64!";
    expect(invalidField(() => decodeReplicationEvent({ ...good, items: badBody }))).toBe("items[0].payload.body");
    const badToken = structuredClone(good.items) as Array<Record<string, Record<string, unknown>>>;
    delete badToken[0]!.lastOwnershipToken!.fencingToken;
    expect(invalidField(() => decodeReplicationEvent({ ...good, items: badToken }))).toBe(
      "items[0].lastOwnershipToken.fencingToken",
    );
    expect(invalidField(() => decodeReplicationEvent({ ...good, error: { code: "x" } }))).toBe("error.message");
  });
});
