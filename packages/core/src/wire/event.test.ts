import { describe, expect, it } from "vitest";
import { ResourceLeaseEventTypes } from "../contracts/events.js";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { eventOfEveryType, makeEvent, samplePayload } from "../replication/test-fixtures.js";
import { decodeReplicationEvent, encodeReplicationEvent } from "./event.js";

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
    const json = encodeReplicationEvent(granted!) as Record<string, Record<string, unknown>>;
    expect(json.timestamp).toBe("2026-01-01T12:00:00.125Z");
    expect(json.leaseExpiresAt).toBe("2026-01-01T12:00:30.123Z");
    expect(json.eventType).toBe("LeaseGranted");
    expect(json.payload!.body).toBe(Buffer.from([0, 1, 2, 250, 255, 123]).toString("base64"));
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
    const item = encodeReplicationEvent(eventOfEveryType()[0]!).item as Record<string, unknown>;
    expect(item.enqueuedAt).toBe("2026-01-01T11:59:55.123Z");
    expect(item.availableAt).toBe("2026-01-01T12:00:01.123Z");
  });

  it("encodes only the bytes of a Uint8Array view", () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const event = makeEvent(1, "Completed", { payload: { ...samplePayload(), body: backing.subarray(2, 5) } });
    expect((encodeReplicationEvent(event).payload as Record<string, unknown>).body).toBe("AQID");
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

  it("reads canonical UTC timestamps exactly as Date.parse does, and refuses impossible ones", () => {
    const good = encodeReplicationEvent(eventOfEveryType()[0]!) as unknown as Record<string, unknown>;
    const decodeAt = (timestamp: string) => decodeReplicationEvent({ ...good, timestamp }).timestamp;
    // Spread over years 100..9999 (every month length, leap days, the last millisecond of a day).
    const samples = ["2024-02-29T23:59:59.999Z", "2000-02-29T00:00:00.000Z", "0100-01-01T00:00:00.000Z"];
    for (let i = 0; i < 2000; i++) {
      const ms =
        Date.UTC(100, 0, 1) + Math.floor((((i * 7919) % 2000) / 2000) * (Date.UTC(9999, 11, 31) - Date.UTC(100, 0, 1)));
      samples.push(new Date(ms + (i % 1000)).toISOString());
    }
    for (const iso of samples) expect(decodeAt(iso), iso).toBe(Date.parse(iso));
    for (const bad of [
      "2023-02-29T00:00:00.000Z", // not a leap year
      "1900-02-29T00:00:00.000Z", // century, not a leap year
      "2025-04-31T00:00:00.000Z",
      "2025-13-01T00:00:00.000Z",
      "2025-01-01T00:60:00.000Z",
      "2025-01-01T00:00:60.000Z",
      "2025-01-0xT00:00:00.000Z",
      "2025-01-01T00:00:00.0a0Z",
    ]) {
      expect(
        invalidField(() => decodeReplicationEvent({ ...good, timestamp: bad })),
        bad,
      ).toBe("timestamp");
    }
    // Not the canonical shape, still ISO-8601 with a zone: the general path reads it.
    expect(decodeAt("2025-01-01T01:00:00.000+01:00")).toBe(Date.UTC(2025, 0, 1));
    expect(decodeAt("0050-06-01T00:00:00.000Z")).toBe(Date.parse("0050-06-01T00:00:00.000Z"));
  });

  it("accepts exactly standard base64 bodies (padding optional) and decodes them as Buffer does", () => {
    const good = encodeReplicationEvent(makeEvent(1, "Completed", { payload: samplePayload() })) as unknown as {
      payload: Record<string, unknown>;
    };
    const bodyOf = (body: string) =>
      decodeReplicationEvent({ ...good, payload: { ...good.payload, body } }).payload?.body;
    const pattern = /^[A-Za-z0-9+/]*={0,2}$/;
    const alphabet = "ABYZabyz0189+/=-_ !\n.";
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const length = next() % 14;
      let text = "";
      for (let k = 0; k < length; k++) text += alphabet[next() % (i % 3 === 0 ? 10 : alphabet.length)];
      const unpadded = text.replace(/={1,2}$/, "");
      const valid = pattern.test(text) && unpadded.length % 4 !== 1;
      if (valid) {
        accepted++;
        expect(Buffer.from(bodyOf(text) as Uint8Array), text).toEqual(Buffer.from(text, "base64"));
      } else {
        expect(
          invalidField(() => bodyOf(text)),
          text,
        ).toBe("payload.body");
      }
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it("reads back every time it writes, years before 0 and after 9999 too (six digits and a sign)", () => {
    const good = encodeReplicationEvent(eventOfEveryType()[0]!) as unknown as Record<string, unknown>;
    for (const ms of [-8.64e15, Date.UTC(-1, 0, 1), Date.UTC(0, 0, 1) - 1, Date.UTC(10000, 0, 1), 8.64e15]) {
      const event = { ...eventOfEveryType()[0]!, timestamp: ms };
      const json = JSON.parse(JSON.stringify(encodeReplicationEvent(event)));
      expect(json.timestamp).toBe(new Date(ms).toISOString());
      expect(decodeReplicationEvent(json), json.timestamp).toEqual(event);
    }
    for (const bad of ["-000000-01-01T00:00:00.000Z", "+10000-01-01T00:00:00.000Z", "+0010000-01-01T00:00:00.000Z"]) {
      expect(
        invalidField(() => decodeReplicationEvent({ ...good, timestamp: bad })),
        bad,
      ).toBe("timestamp");
    }
  });

  it("takes a previousHash only as a hash is written (22 base64url characters), or absent", () => {
    const event = makeEvent(2, "Enqueue", { previousHash: "AAECAwQFBgcICQoLDA0ODw" });
    const json = JSON.parse(JSON.stringify(encodeReplicationEvent(event)));
    expect(decodeReplicationEvent(json)).toEqual(event);
    const { previousHash: _drop, ...first } = event;
    expect(decodeReplicationEvent({ ...json, previousHash: "" })).toEqual(first);
    // A blank hash was stored by a hub, and the binary log that stored it could not open again.
    for (const bad of [
      " ",
      "\u00a0",
      "AAECAwQFBgcICQoLDA0OD",
      "AAECAwQFBgcICQoLDA0ODwA",
      "AAECAwQFBgcICQoLDA0OD+",
      7,
    ]) {
      expect(
        invalidField(() => decodeReplicationEvent({ ...json, previousHash: bad })),
        String(bad),
      ).toBe("previousHash");
    }
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
    expect(invalidField(() => decodeReplicationEvent({ ...good, error: { message: 5 } }))).toBe("error.message");
    // One description of an error for requests and logs: a missing message reads as empty.
    expect(decodeReplicationEvent({ ...good, error: { code: "x" } }).error).toEqual({ message: "", code: "x" });
  });

  it("carries notBefore (ISO-8601) and priority, and refuses a priority outside int32 or a time outside Date", () => {
    const event = makeEvent(1, "Enqueue", {
      item: {
        payload: { ...samplePayload(), notBefore: Date.UTC(2026, 5, 1, 8, 0, 0, 7), priority: -(2 ** 31) },
        sequenceId: 1,
        attempt: 1,
        enqueuedAt: Date.UTC(2026, 0, 1),
      },
    });
    const json = encodeReplicationEvent(event) as { item: { payload: Record<string, unknown> } };
    expect(json.item.payload.notBefore).toBe("2026-06-01T08:00:00.007Z");
    expect(json.item.payload.priority).toBe(-(2 ** 31));
    expect(decodeReplicationEvent(JSON.parse(JSON.stringify(json)))).toEqual(event);
    const withPayload = (extra: Record<string, unknown>) => ({
      ...json,
      item: { ...json.item, payload: { ...json.item.payload, ...extra } },
    });
    // The log is held to the same int32 as a request: a priority no request could give is not read back either.
    for (const priority of [2 ** 31, -(2 ** 31) - 1, 1.5, "x"]) {
      expect(invalidField(() => decodeReplicationEvent(withPayload({ priority })))).toBe("item.payload.priority");
    }
    for (const notBefore of ["+275760-09-13T00:00:00.001Z", "never", 8.64e15 + 1]) {
      expect(invalidField(() => decodeReplicationEvent(withPayload({ notBefore })))).toBe("item.payload.notBefore");
    }
  });
});
